"""Opening a case (案件生成): the one place a new case starts.

Every source opens its cases here: reports (and what files a report: shop visits,
inspections, Open311, the platform exchange) and whistles. The workflow table's entry row
for the source (`workflow.ENTRIES`) decides who may open it, its first status and its
first events; the category's time limits its first deadline; the routing decision is
stored with it. The source keeps its own record (a report, a whistle) beside the case,
then `record_opening` writes the first events, which name that record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.access.rules import Forbidden, Principal
from app.calendar.service import working_calendar
from app.cases.models import Case, CaseSource, CaseStatus
from app.cases.service import assign_number, record_event
from app.cases.steps import dispatch_directly
from app.cases.workflow import Need, acting_role, entry_for, may_act
from app.routing.models import Urgency
from app.routing.service import Decision, record_decision
from app.routing.taxonomy import CategoryNode
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings


def open_case(
    session: Session,
    settings: Settings,
    actor: Principal,
    *,
    source: CaseSource,
    category: CategoryNode,
    urgency: Urgency,
    description: str,
    point: Any,
    decision: Decision,
    now: datetime,
    fixed_on_spot: bool = False,
    summoned: Sequence[Unit] = (),
) -> Case:
    """A new case, numbered, as its entry row says: in its first status, with its first
    deadline, routed by `decision` (stored now, so the case is inserted with it) and, for a
    whistle, with a task for each `summoned` unit (the first the lead). Version 1."""
    entry = entry_for(source, fixed_on_spot=fixed_on_spot)
    if not may_act(actor, entry.actors):
        raise Forbidden(f"“{entry.name_zh}”不是您的角色可以执行的操作")
    if (Need.UNIT in entry.needs) != bool(summoned):
        raise ValueError(
            f"{entry.action.value}: summoned units {'missing' if not summoned else 'not taken'}"
        )
    status = entry.fixed_target
    assert status is not None  # an entry row has one target
    limits = category.time_limits.get(urgency.value) or {}

    def due(kind: str) -> datetime | None:
        hours = limits.get(kind)
        return working_calendar(session, settings).add_working_hours(now, hours) if hours else None

    facts = decision.out.facts
    case = Case(
        status=status,
        source=source,
        category_code=category.code,
        urgency=urgency,
        description=description,
        reporter_user_id=actor.user_id,
        reported_at=now,
        geom=point,
        jurisdiction_path=decision.jurisdiction_path,
        street_code=facts.street.code if facts.street else None,
        community_code=facts.community.code if facts.community else None,
        grid_cell_code=facts.grid_cell_code,
        segment_code=facts.segment.code if facts.segment else None,
        # Waiting for registration, the handling term is an estimate from now; fixed on the
        # spot, nothing is handled and the verification term runs at once; dispatched, the
        # tasks' terms decide (`dispatch_directly`).
        handle_due_at=due("handle") if status is CaseStatus.PENDING_REGISTRATION else None,
        verify_due_at=due("verify") if status is CaseStatus.AWAITING_VERIFICATION else None,
        fixed_on_spot=fixed_on_spot,
        report_count=1,
        routing_decision_id=record_decision(session, actor, decision).id,
    )
    session.add(case)
    session.flush()
    assign_number(case, settings.zone)
    if summoned:
        dispatch_directly(session, settings, actor, case, list(summoned), now)
    if case.status not in entry.targets:  # the table is the law, even for the code
        raise RuntimeError(f"{entry.action.value} opened a case {case.status.value}")
    return case


def record_opening(
    session: Session,
    settings: Settings,
    actor: Principal,
    case: Case,
    *,
    note: str | None,
    geom: Any,
    detail: dict[str, Any],
    photo_ids: Sequence[int] = (),
    fixed_photo_ids: Sequence[int] = (),
) -> None:
    """The new case's first events, as its entry row says: the row's event, moving it
    into its first status (a fix on the spot is first a report, then the fix with its
    after-photos). `detail` names the source's record (`report_id`, `whistle_id`)."""
    entry = entry_for(case.source, fixed_on_spot=case.fixed_on_spot)
    common: dict[str, Any] = {
        "occurred_at": case.reported_at,
        "actor_user_id": actor.user_id,
        "actor_role": acting_role(actor, entry.actors),
        "geom": geom,
    }
    if entry.preceded_by is not None:
        record_event(session, settings, case, entry.preceded_by, note=note,
                     photo_ids=list(photo_ids), detail=dict(detail), **common)  # fmt: skip
        note, photo_ids = None, fixed_photo_ids
    record_event(session, settings, case, entry.event, to_status=case.status, note=note,
                 photo_ids=list(photo_ids), detail=dict(detail), **common)  # fmt: skip
