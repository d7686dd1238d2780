"""The command centre's pages (指挥中心): the dispatch queue, verification, whistles and
deadline alarms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response

from app.assessment import search
from app.assessment.service import MAX_PERIOD_DAYS
from app.cases import queues
from app.cases.models import OPEN_TASK_STATUSES, CaseEventKind, CaseStatus
from app.cases.view import get_case
from app.console.deps import Me, console_router
from app.console.pages import SUMMONS_ZH, render
from app.console.session import PREFIX
from app.core.deps import SessionDep, SettingsDep
from app.core.moments import to_local
from app.routing.service import routing_context
from app.whistles import service as whistles
from app.whistles.schemas import SummonsStatus

router = console_router()


DISPATCH_STAGES = {
    "register": "待立案",
    "dispatch": "待派遣",
    "returns": "退回待审",
    "extensions": "延期待批",
}


@router.get("/dispatch")
def dispatch_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    stage: Annotated[queues.DispatchStage | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The centre's queue (受理派遣) with each case's routing proposal; register, reject and
    accept the proposal from the row, the rest on the case page."""
    items, next_cursor = queues.dispatch_queue(
        session, settings, me, stage=stage, limit=50, cursor=cursor or None
    )
    here = f"{PREFIX}/dispatch" + (f"?stage={stage}" if stage else "")
    more = urlencode({"stage": stage or "", "cursor": next_cursor}) if next_cursor else None
    return render(
        request, settings, "dispatch.html", me, items=items, stage=stage, stages=DISPATCH_STAGES,
        categories=routing_context(session).taxonomy,
        here=here, more=more,
    )  # fmt: skip


@router.get("/verification")
def verification_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Cases awaiting the person's verification (核查): the verification itself is taken on
    site (it needs the verifier's position), so the page leads to each case's history."""
    items, next_cursor = queues.verification_queue(
        session, settings, me, limit=50, cursor=cursor or None
    )
    more = urlencode({"cursor": next_cursor}) if next_cursor else None
    return render(
        request, settings, "verification.html", me, items=items, more=more,
        categories=routing_context(session).taxonomy,
    )  # fmt: skip


# --- the command centre: whistles, deadline alarms -------------------------------------------


@router.get("/whistles")
def whistles_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    only: Annotated[str | None, Query(alias="open", max_length=5)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Whistles (路长吹哨) in the person's sight with each summoned unit's report-in, as
    `whistles.service.list_whistles` answers the API; `open=true` keeps those a unit has
    still to report in to (待报到)."""
    items, next_cursor = whistles.list_whistles(
        session, me, settings, unit_code=None, segment_code=None, limit=50,
        cursor=cursor or None,
    )  # fmt: skip
    only_open = only == "true"
    if only_open:
        items = [w for w in items if w.counts.get(SummonsStatus.WAITING)]
    more = urlencode({"open": only or "", "cursor": next_cursor}) if next_cursor else None
    return render(
        request, settings, "whistles.html", me, items=items, only_open=only_open, more=more,
        summons_zh=SUMMONS_ZH,
    )  # fmt: skip


#: What the deadline sweep records that the centre must see (预警、超期、升级).
ALARM_KINDS = frozenset(
    {
        CaseEventKind.DEADLINE_WARNING,
        CaseEventKind.SIGN_FOR_OVERDUE,
        CaseEventKind.OVERDUE,
        CaseEventKind.ESCALATED,
        CaseEventKind.VERIFICATION_OVERDUE,
    }
)
#: Cases whose deadlines still run.
ALARM_STATUSES = [
    CaseStatus.DISPATCHED,
    CaseStatus.IN_PROGRESS,
    CaseStatus.AWAITING_VERIFICATION,
]


@dataclass(frozen=True)
class Alarm:
    """A case with a task past its warning point, overdue or escalated, and what the sweep
    recorded of it on the day shown."""

    case: Any
    late_tasks: list[Any]
    warned_units: list[str]
    today: list[Any]


@router.get("/alarms")
def alarms_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    day: Annotated[date | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """今日预警与升级: open cases in the person's scope (`assessment.search`, as the case
    search API) whose tasks are past their warning point, overdue or escalated (each case
    read by `view.get_case`, as the API shows it), with what the sweep recorded on the
    day; each row can be urged (督办) at once."""
    shown = day or datetime.now(settings.zone).date()
    filters = search.CaseFilter.model_validate(
        {"from": shown - timedelta(days=MAX_PERIOD_DAYS - 1), "to": shown,
         "status": ALARM_STATUSES}
    )  # fmt: skip
    rows, next_cursor = search.search(
        session, settings, me, filters, limit=50, cursor=cursor or None
    )
    items = []
    for row in rows:
        case = get_case(session, settings, me, row.number)
        warned = {
            e.unit.code for e in case.history
            if e.kind is CaseEventKind.DEADLINE_WARNING and e.unit is not None
        }  # fmt: skip
        open_tasks = [t for t in case.tasks if t.status in OPEN_TASK_STATUSES]
        late = [t for t in open_tasks if t.overdue or t.escalation_level > 0]
        warned_units = [t.unit.name for t in open_tasks if t.unit.code in warned and t not in late]
        today = [
            e for e in case.history
            if e.kind in ALARM_KINDS and to_local(e.occurred_at).date() == shown
        ]  # fmt: skip
        if late or warned_units or today:
            items.append(Alarm(case, late, warned_units, today))
    here = f"{PREFIX}/alarms" + (f"?day={day.isoformat()}" if day else "")
    more = (
        urlencode({"day": day.isoformat() if day else "", "cursor": next_cursor})
        if next_cursor
        else None
    )
    return render(
        request, settings, "alarms.html", me, items=items, day=shown, here=here, more=more,
        categories=routing_context(session).taxonomy,
    )  # fmt: skip
