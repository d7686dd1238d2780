"""The web console (Web 控制台) under /console: pages for desk work, in Chinese.

Every page calls the same service functions as the API, with the signed-in person's
`Principal`: what a page lists, shows or lets one do is what the API would answer that
person. Pages are server-rendered (Jinja2); htmx swaps parts of them in place.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from app.accounts import service as accounts
from app.accounts import signin
from app.accounts.access import Permission, Principal
from app.accounts.deps import ClientAddressDep
from app.accounts.models import Role
from app.accounts.tokens import read_access_token
from app.assessment import inspections, rankings, search
from app.assessment import kpis as kpi_table
from app.assessment import service as assessment
from app.assessment.service import MAX_PERIOD_DAYS
from app.audit import service as audit
from app.audit.models import AuditEventType
from app.cases import actions, queues
from app.cases.models import OPEN_TASK_STATUSES, CaseEventKind, CaseStatus, TaskStatus
from app.cases.schemas import ActionIn
from app.cases.workflow import Action
from app.console.pages import (
    CASE_STATUS_ZH,
    COVERAGE_COLOURS,
    COVERAGE_ZH,
    GRADE_ZH,
    HEAT_LEGEND,
    HEAT_RAMP,
    HERE,
    SUMMONS_ZH,
    event_zh,
    heat_step,
    home_of,
    map_geometry,
    on_tiles,
    open_steps,
    render,
)
from app.console.session import (
    CSRF_FIELD,
    PREFIX,
    REFRESH_COOKIE,
    CsrfRefused,
    SignInRequired,
    check_csrf,
    current_principal,
    forget_pair,
    jar,
    keep_pair,
    renew_csrf,
)
from app.core.bodies import MULTIPART_FRAMING_BYTES, body_limit
from app.core.config import Settings
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem
from app.core.geo import metres_per_degree
from app.core.inputs import DatabaseId
from app.media import service as media
from app.media.router import photo_response
from app.notifications import service as notifications
from app.notifications.schemas import OTHER_EVENT_TYPES, WebhookCreate
from app.patrols import compliance
from app.routing import rule_sets
from app.routing import service as routing
from app.routing.schemas import RouteRequest, RuleSetDocument
from app.routing.service import routing_context
from app.territory import service as territory
from app.territory.importer import Layer
from app.whistles import service as whistles
from app.whistles.schemas import SummonsStatus

#: Photos one console step may upload from the PC.
MAX_STEP_PHOTOS = 4


class ConsoleRoute(APIRoute):
    """Answers in HTML: a missing session sends the browser to sign in, a refusal of the
    service (its Problem) becomes a page with its Chinese message and its status; cookies
    decided during the request are set on whatever answer goes out."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            try:
                response = await handle(request)
            except SignInRequired:
                response = _to_sign_in(request)
            except Problem as problem:
                response = render(
                    request, settings, "error.html", getattr(request.state, "principal", None),
                    status_code=problem.status, problem=problem,
                )  # fmt: skip
            except (RequestValidationError, ValidationError) as invalid:
                response = render(
                    request, settings, "error.html", getattr(request.state, "principal", None),
                    status_code=422, problem=None, invalid=invalid.errors(),
                )  # fmt: skip
            jar(request).apply(response, settings)
            # Pages hold personal data and CSRF tokens: never cached, never framed.
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers["X-Frame-Options"] = "DENY"
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'",
            )
            return response

        return console_handler


def _to_sign_in(request: Request) -> Response:
    target = f"{PREFIX}/login?" + urlencode({"next": request.url.path})
    if request.headers.get("HX-Request"):  # htmx follows this header, not a 303
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def signed_in(
    request: Request, session: SessionDep, settings: SettingsDep, address: ClientAddressDep
) -> Principal:
    principal = current_principal(request, session, settings, address)
    request.state.principal = principal
    return principal


Me = Annotated[Principal, Depends(signed_in)]
CsrfField = Annotated[str | None, Form(alias=CSRF_FIELD)]


def _back(url: str, flash: str) -> RedirectResponse:
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}flash={flash}", status_code=303)


def _safe_next(value: str | None) -> str | None:
    """Only a path of the console itself (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return None


# --- sign-in -------------------------------------------------------------------------------


@router.get("")
def console_home(request: Request, me: Me) -> Response:
    return RedirectResponse(home_of(me), status_code=303)


@router.get("/login")
def login_page(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    return render(request, settings, "login.html", None, next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    csrf: CsrfField = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    """The API's password grant (throttle and audit included); the pair goes to cookies."""
    check_csrf(request, settings, csrf)
    try:
        pair = signin.login(session, settings, username, password, address)
    except Problem as problem:
        return render(
            request, settings, "login.html", None, status_code=problem.status,
            error=problem.detail or problem.title, username=username, next=_safe_next(next),
        )  # fmt: skip
    keep_pair(request, settings, pair)
    renew_csrf(request)
    principal = read_access_token(pair.access_token, settings).principal
    return RedirectResponse(_safe_next(next) or home_of(principal), status_code=303)


@router.post("/logout")
def logout(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if refresh:
        signin.logout(session, refresh, address)
    forget_pair(request)
    renew_csrf(request)
    return RedirectResponse(f"{PREFIX}/login?flash=signed_out", status_code=303)


# --- department staff: tasks ---------------------------------------------------------------


@router.get("/tasks")
def tasks_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    status: Annotated[TaskStatus | None, Query()] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    flag = {"true": True, "false": False}.get(overdue or "")
    items, next_cursor = queues.unit_tasks(
        session, settings, me, unit_code=unit or None, status=status, category=category or None,
        street=street or None, overdue=flag, limit=50, cursor=cursor or None,
    )  # fmt: skip
    filters = {
        "status": status.value if status else "",
        "category": category or "",
        "street": street or "",
        "overdue": overdue or "",
        "unit": unit or "",
    }
    more = urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
    template = "tasks_rows.html" if request.headers.get("HX-Request") else "tasks.html"
    return render(
        request, settings, template, me, items=items, filters=filters, more=more,
        statuses=list(TaskStatus), categories=routing_context(session).taxonomy,
    )  # fmt: skip


@router.post("/tasks/sign-for")
def batch_sign_for(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    picked: Annotated[list[str], Form(alias="task", max_length=50)],
    csrf: CsrfField = None,
) -> Response:
    """签收 several tasks: each `number:version:unit` as the list showed it. Each is its own
    step (its own version check); one refused does not undo the others."""
    check_csrf(request, settings, csrf)
    results = []
    for value in picked:
        number, _, rest = value.partition(":")
        version, _, unit = rest.partition(":")
        try:
            actions.perform(
                session, settings, me, number, Action.SIGN_FOR,
                ActionIn(version=int(version) if version.isdigit() else -1, unit_code=unit or None),
                None,
            )  # fmt: skip
            results.append((number, True, "已签收"))
        except Problem as problem:
            results.append((number, False, problem.detail or problem.title))
    return render(request, settings, "batch_result.html", me, results=results)


# --- one case ------------------------------------------------------------------------------


@router.get("/cases/{number}")
def case_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    number: str,
) -> Response:
    return _case_page(request, session, settings, me, number)


def _case_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    number: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    case = actions.get_case(session, settings, me, number)
    steps = open_steps(me, case)
    return render(
        request, settings, "case.html", me, status_code=status_code, case=case, steps=steps,
        categories=routing_context(session).taxonomy,
        error=error, place=on_tiles(settings, case.lon, case.lat),
        photo_places=_photo_places(session, settings, me, case),
    )  # fmt: skip


def _photo_places(
    session: Any, settings: Settings, me: Principal, case: Any
) -> list[dict[str, Any]]:
    """Where each of the case's photos was taken, by its EXIF (拍摄位置), and how far that
    is from the case: evidence the desk can weigh. A photo the media service would not
    show this person is left out."""
    places: list[dict[str, Any]] = []
    seen: set[int] = set()
    for event in case.history:
        for photo_id in event.photo_ids:
            if photo_id in seen:
                continue
            seen.add(photo_id)
            try:
                photo = media.visible_photo(session, me, photo_id)
            except Problem:
                continue
            if photo.exif_lon is None or photo.exif_lat is None:
                continue
            per_lon, per_lat = metres_per_degree(case.lat)
            metres = math.hypot(
                (photo.exif_lon - case.lon) * per_lon, (photo.exif_lat - case.lat) * per_lat
            )
            lon, lat = on_tiles(settings, photo.exif_lon, photo.exif_lat)
            places.append({
                "id": photo_id, "lon": lon, "lat": lat, "metres": round(metres),
                "label": f"照片 {photo_id}（{event_zh(event.kind.value)}）拍摄位置，"
                         f"距案件约 {round(metres)} 米",
            })  # fmt: skip
    return places


def _deadline(value: str | None, settings: Settings) -> datetime | None:
    """A `datetime-local` field, read in the service's zone."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=settings.zone)


@router.post("/cases/{number}/actions/{action}")
@body_limit(lambda s: MAX_STEP_PHOTOS * s.photo_max_bytes + MULTIPART_FRAMING_BYTES)
def take_step(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    number: str,
    action: Action,
    version: Annotated[int, Form()],
    csrf: CsrfField = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    unit_code: Annotated[str | None, Form(max_length=64)] = None,
    units: Annotated[str | None, Form(max_length=1000)] = None,
    approved: Annotated[str | None, Form(max_length=5)] = None,
    new_due_at: Annotated[str | None, Form(max_length=30)] = None,
    back: Annotated[str | None, Form(max_length=500)] = None,
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """One step, through `actions.perform` as the API takes it. Refused (a stale version
    included), the case page comes back with the service's message."""
    check_csrf(request, settings, csrf)
    try:
        photo_ids = []
        for upload in [p for p in photos or [] if p.filename][:MAX_STEP_PHOTOS]:
            me.require(Permission.PHOTOS_UPLOAD)
            photo_ids.append(media.upload_photo(session, settings, me, upload.file).id)
        body = ActionIn(
            version=version,
            note=note or None,
            reason=reason or None,
            unit_code=unit_code or None,
            units=[u.strip() for u in units.split(",") if u.strip()] if units else None,
            approved={"true": True, "false": False}.get(approved or ""),
            new_due_at=_deadline(new_due_at, settings),
            photo_ids=photo_ids,
        )
        actions.perform(session, settings, me, number, action, body, None)
    except actions.VersionConflict:
        return _case_page(
            request, session, settings, me, number, status_code=409,
            error="案件已被他人更新（版本冲突）：下面是最新的案件，请核对后重新操作",
        )  # fmt: skip
    except Problem as problem:
        if problem.status == 404:
            raise
        return _case_page(
            request, session, settings, me, number, status_code=problem.status,
            error=problem.detail or problem.title,
        )  # fmt: skip
    except ValidationError as invalid:
        return _case_page(
            request, session, settings, me, number, status_code=422,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    return _back(_safe_next(back) or f"{PREFIX}/cases/{number}", "done")


# --- the command centre, verifiers -----------------------------------------------------------

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
    read by `actions.get_case`, as the API shows it), with what the sweep recorded on the
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
        case = actions.get_case(session, settings, me, row.number)
        warned = {
            e.unit.code for e in case.history
            if e.kind is CaseEventKind.DEADLINE_WARNING and e.unit is not None
        }  # fmt: skip
        open_tasks = [t for t in case.tasks if t.status in OPEN_TASK_STATUSES]
        late = [t for t in open_tasks if t.overdue or t.escalation_level > 0]
        warned_units = [t.unit.name for t in open_tasks if t.unit.code in warned and t not in late]
        today = [
            e for e in case.history
            if e.kind in ALARM_KINDS and e.occurred_at.astimezone(settings.zone).date() == shown
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


# --- assessors and leaders -------------------------------------------------------------------

KPI_DIMENSIONS = {"street": "街道", "unit": "部门", "category": "类别", "community": "社区"}


def _this_month(settings: Settings) -> tuple[date, date]:
    today = datetime.now(settings.zone).date()
    first = today.replace(day=1)
    return first, today


@router.get("/kpis")
def kpis_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    by: Annotated[Literal["street", "unit", "category", "community"], Query()] = "street",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """KPIs of a period by street, unit or category (考核指标), with their formulas."""
    first, last = _this_month(settings)
    report = assessment.kpis(
        session, settings, me, by=by, date_from=date_from or first, date_to=date_to or last
    )
    weights = kpi_table.parse_weights(settings.assessment_weights)
    definitions = [
        (code, name, formula, better, weights.get(code))
        for code, name, formula, better in kpi_table.definitions()
    ]
    span = {"from": report.date_from.isoformat(), "to": report.date_to.isoformat()}
    return render(
        request, settings, "kpis.html", me, report=report, by=by, dimensions=KPI_DIMENSIONS,
        definitions=definitions, names={c: n for c, n, *_ in definitions}, span=span,
        exports={fmt: f"{PREFIX}/exports/cases.{fmt}?{urlencode(span)}" for fmt in EXPORTS},
        score_formula=kpi_table.SCORE, period_rule=kpi_table.PERIOD,
    )  # fmt: skip


def _default_period(settings: Settings) -> str:
    return datetime.now(settings.zone).strftime("%Y-%m")


@router.get("/rankings")
def rankings_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    kind: Annotated[Literal["street", "unit"], Query()] = "street",
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """月排名 / 周通报 with red and black flags."""
    board = rankings.ranking(
        session, settings, me, kind=kind, period=period or _default_period(settings)
    )
    return render(request, settings, "rankings.html", me, board=board, kind=kind)


@router.get("/bulletin")
def bulletin_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The printable bulletin (月排名通报 / 周通报): both rankings and the district's score."""
    label = period or _default_period(settings)
    boards = [
        rankings.ranking(session, settings, me, kind=kind, period=label)
        for kind in ("street", "unit")
    ]
    district = rankings.district_score(session, settings, me, period=label)
    return render(
        request, settings, "bulletin.html", me, boards=boards, district=district, period=label,
        printed=datetime.now(settings.zone),
    )  # fmt: skip


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", search.export_csv),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        search.export_xlsx,
    ),
}


@router.get("/exports/cases.{fmt}")
def export_cases(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    fmt: Literal["csv", "xlsx"],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
) -> Response:
    """The assessment export of the API (`/api/v1/assessment/cases/export.*`) for the
    browser's session."""
    media_type, export = EXPORTS[fmt]
    filters = search.CaseFilter.model_validate({"from": date_from, "to": date_to})
    body = export(session, settings, me, filters)
    name = f"cases-{date_from:%Y%m%d}-{date_to:%Y%m%d}.{fmt}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- assessors: the heat map, patrol coverage, inspection scores ------------------------------

HEAT_LEVELS = {"grid_cell": "万米单元格", "segment": "路段"}


def _span(settings: Settings, date_from: date | None, date_to: date | None) -> dict[str, str]:
    first, last = _this_month(settings)
    return {"from": (date_from or first).isoformat(), "to": (date_to or last).isoformat()}


@router.get("/heatmap")
def heatmap_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    level: Annotated[Literal["grid_cell", "segment"], Query()] = "grid_cell",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Cases per grid cell or segment (案件热力图) over the territory, with the busiest
    listed beside the map (the numbers, for those who do not read colours)."""
    span = _span(settings, date_from, date_to)
    heat = _heat(session, settings, me, level, span)
    query = urlencode({"level": level, **span})
    return render(
        request, settings, "heatmap.html", me, heat=heat, level=level, levels=HEAT_LEVELS,
        span=span, src=f"{PREFIX}/heatmap.geojson?{query}", legend=HEAT_LEGEND,
    )  # fmt: skip


def _heat(
    session: Any, settings: Settings, me: Principal, level: str, span: dict[str, str]
) -> dict[str, Any]:
    filters = search.CaseFilter.model_validate(span)
    heat = search.heatmap(session, settings, me, filters, level)  # type: ignore[arg-type]
    for feature in heat["features"]:
        cases = feature["properties"]["cases"]
        feature["geometry"] = map_geometry(settings, feature["geometry"])
        step = heat_step(cases, heat["max_cases"])
        feature["properties"].update(
            layer="heat", step=step, color=HEAT_RAMP[step],
            label=f"{feature['id']}：{cases} 件",
        )  # fmt: skip
    return heat


@router.get("/heatmap.geojson")
def heatmap_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    level: Annotated[Literal["grid_cell", "segment"], Query()] = "grid_cell",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """`assessment.search.heatmap` (as `GET /api/v1/assessment/heatmap`), each feature
    coloured and in the datum of the configured tiles."""
    return JSONResponse(_heat(session, settings, me, level, _span(settings, date_from, date_to)))


def _week(settings: Settings) -> dict[str, str]:
    today = datetime.now(settings.zone).date()
    return {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}


def _coverage(
    session: Any, settings: Settings, me: Principal, span: dict[str, str], street: str | None
) -> dict[str, Any]:
    found = compliance.coverage_map(
        session, settings, me, date_from=date.fromisoformat(span["from"]),
        date_to=date.fromisoformat(span["to"]), street_code=street,
    )  # fmt: skip
    for feature in found["features"]:
        facts = feature["properties"]
        feature["geometry"] = map_geometry(settings, feature["geometry"])
        facts.update(
            layer="coverage", color=COVERAGE_COLOURS[facts["coverage"]],
            label=f"{facts['name']}：{COVERAGE_ZH[facts['coverage']]}",
        )  # fmt: skip
    return found


@router.get("/coverage")
def coverage_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Segments coloured by patrol coverage over the days asked (巡查覆盖图), from
    `patrols.compliance.coverage_map` as the API; the last seven days by default."""
    span = _week(settings)
    if date_from or date_to:
        span = {"from": (date_from or date_to).isoformat(),  # type: ignore[union-attr]
                "to": (date_to or date_from).isoformat()}  # type: ignore[union-attr]  # fmt: skip
    found = _coverage(session, settings, me, span, street or None)
    tally = Counter(f["properties"]["coverage"] for f in found["features"])
    query = urlencode({**span, **({"street": street} if street else {})})
    return render(
        request, settings, "coverage.html", me, found=found, span=span, street=street or "",
        tally=tally, src=f"{PREFIX}/coverage.geojson?{query}", coverage_zh=COVERAGE_ZH,
        colours=COVERAGE_COLOURS,
    )  # fmt: skip


@router.get("/coverage.geojson")
def coverage_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    street: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    span = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    return JSONResponse(_coverage(session, settings, me, span, street or None))


INSPECTION_DIMENSIONS = {"segment": "路段", "street": "街道", "unit": "部门"}


@router.get("/inspections")
def inspections_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    by: Annotated[Literal["segment", "street", "unit"], Query()] = "segment",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Field-inspection scores (实地考评得分) per segment with its 千百十 grade, per street
    or per department, as `GET /api/v1/assessment/inspection-scores`."""
    span = _span(settings, date_from, date_to)
    scores = inspections.inspection_scores(
        session, settings, me, by=by,
        period=assessment.period_of(
            settings, date.fromisoformat(span["from"]), date.fromisoformat(span["to"])
        ),
    )  # fmt: skip
    return render(
        request, settings, "inspections.html", me, scores=scores, by=by, span=span,
        dimensions=INSPECTION_DIMENSIONS, grades=GRADE_ZH,
    )  # fmt: skip


# --- admins, the map ---------------------------------------------------------------------------


@router.get("/admin/users")
def users_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    role: Annotated[Role | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Users in the admin's scope (`accounts.service.list_users`, as the admin API)."""
    items, next_cursor = accounts.list_users(
        session, me, role=role, unit_code=None, active=None, q=q or None, limit=50,
        cursor=cursor or None,
    )  # fmt: skip
    more = (
        urlencode({"role": role or "", "q": q or "", "cursor": next_cursor})
        if next_cursor
        else None
    )
    return render(
        request, settings, "users.html", me, items=items, role=role, q=q or "", more=more,
        roles=list(Role),
    )  # fmt: skip


@router.get("/admin/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    event: Annotated[AuditEventType | None, Query()] = None,
    user: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The security audit log (审计日志), newest first (`audit.service.list_events`)."""
    items, next_cursor = audit.list_events(
        session, settings, me, event=event, user=user or None, since=None, until=None,
        limit=100, cursor=cursor or None,
    )  # fmt: skip
    more = (
        urlencode({"event": event or "", "user": user or "", "cursor": next_cursor})
        if next_cursor
        else None
    )
    return render(
        request, settings, "audit.html", me, items=items, event=event, user=user or "",
        more=more, events=list(AuditEventType),
    )  # fmt: skip


# --- admins: webhooks, routing tables, chiefs' segments -------------------------------------

#: Event types a webhook may ask for, as `WebhookCreate` knows them.
WEBHOOK_EVENT_TYPES = sorted(f"case.{kind.value}" for kind in CaseEventKind) + list(
    OTHER_EVENT_TYPES
)


def _webhooks_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    *,
    created: Any = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request, settings, "webhooks.html", me, status_code=status_code,
        items=notifications.list_webhooks(session, me), created=created, error=error,
        event_types=WEBHOOK_EVENT_TYPES,
    )  # fmt: skip


@router.get("/admin/webhooks")
def webhooks_page(request: Request, session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """Webhooks (`notifications.service.list_webhooks`, as the admin API)."""
    return _webhooks_page(request, session, settings, me)


@router.post("/admin/webhooks")
def add_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    name: Annotated[str, Form(max_length=100)],
    url: Annotated[str, Form(max_length=2000)],
    event_types: Annotated[list[str] | None, Form(alias="event_type", max_length=60)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Add one (`create_webhook`); its signing secret is shown on the answer, once."""
    check_csrf(request, settings, csrf)
    try:
        body = WebhookCreate(name=name, url=url, event_types=event_types or [])  # type: ignore[arg-type]
        created = notifications.create_webhook(session, settings, me, body)
    except ValidationError as invalid:
        return _webhooks_page(
            request, session, settings, me, status_code=422,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    except Problem as problem:
        if problem.status == 403:
            raise
        return _webhooks_page(
            request, session, settings, me, status_code=problem.status,
            error=problem.detail or problem.title,
        )  # fmt: skip
    return _webhooks_page(request, session, settings, me, created=created)


@router.post("/admin/webhooks/{webhook_id}/remove")
def remove_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    webhook_id: DatabaseId,
    csrf: CsrfField = None,
) -> Response:
    """Stop one (`deactivate_webhook`, as `DELETE /api/v1/admin/webhooks/{id}`)."""
    check_csrf(request, settings, csrf)
    notifications.deactivate_webhook(session, me, webhook_id)
    return _back(f"{PREFIX}/admin/webhooks", "done")


#: A routing table upload, at most (the shipped ones are a few tens of kilobytes).
MAX_RULE_SET_BYTES = 2 * 1024 * 1024


def _routing_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    versions = rule_sets.list_rule_sets(session, me)
    return render(
        request, settings, "routing.html", me, status_code=status_code, versions=versions,
        categories=routing_context(session).taxonomy, **context,
    )  # fmt: skip


@router.get("/admin/routing")
def routing_page(request: Request, session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """The routing table's versions (分拨规则): upload and check a new one, try a point
    against any version, activate one, roll back, all through `routing.rule_sets` and
    `routing.service.dry_run` as the admin API."""
    me.require(Permission.ROUTING_MANAGE)
    return _routing_page(request, session, settings, me)


def _read_document(upload: UploadFile) -> RuleSetDocument:
    """A YAML (or JSON) routing table, as the shipped ones are written."""
    raw = upload.file.read(MAX_RULE_SET_BYTES + 1)
    if len(raw) > MAX_RULE_SET_BYTES:
        raise RuleSetUnreadable(f"文件超过 {MAX_RULE_SET_BYTES // 1024 // 1024} MB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as bad:
        raise RuleSetUnreadable(f"无法读取 YAML/JSON：{bad}") from None
    return RuleSetDocument.model_validate(data)


class RuleSetUnreadable(Problem):
    code = "rule_set_unreadable"
    status = 422
    title = "分拨规则文件无法读取"


@router.post("/admin/routing/upload")
@body_limit(lambda s: MAX_RULE_SET_BYTES + MULTIPART_FRAMING_BYTES)
def upload_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    document: Annotated[UploadFile, File()],
    mode: Annotated[Literal["validate", "upload", "activate"], Form()] = "validate",
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Check a table (`validate_rule_set`), or store it as a draft or at once in force
    (`upload_rule_set`): refused whole, its errors listed beside the form."""
    check_csrf(request, settings, csrf)
    me.require(Permission.ROUTING_MANAGE)
    try:
        parsed = _read_document(document)
        if mode == "validate":
            check = rule_sets.validate_rule_set(session, me, parsed)
            return _routing_page(
                request, session, settings, me, status_code=200 if check.valid else 422,
                check=check, checked_name=parsed.name,
            )  # fmt: skip
        stored = rule_sets.upload_rule_set(
            session, me, parsed, activate=mode == "activate", reason=reason or None
        )
    except ValidationError as invalid:
        return _routing_page(
            request, session, settings, me, status_code=422,
            error="文件内容不符合分拨规则格式",
            field_errors=[(".".join(map(str, e["loc"])), str(e["msg"])) for e in invalid.errors()],
        )  # fmt: skip
    except Problem as problem:
        if problem.status in (401, 403):
            raise
        return _routing_page(
            request, session, settings, me, status_code=problem.status,
            error=problem.detail or problem.title,
            field_errors=[(".".join(map(str, e.loc)), e.message) for e in problem.errors or []],
        )  # fmt: skip
    return _back(f"{PREFIX}/admin/routing?stored={stored.version}", "done")


@router.post("/admin/routing/dry-run")
def routing_dry_run(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    category_code: Annotated[str, Form(max_length=100)],
    lon: Annotated[float, Form()],
    lat: Annotated[float, Form()],
    version: Annotated[int | None, Form()] = None,
    asset_code: Annotated[str | None, Form(max_length=64)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Where would a problem at this point go, under this version (`routing.service.dry_run`,
    nothing stored)."""
    check_csrf(request, settings, csrf)
    me.require(Permission.ROUTING_MANAGE)
    asked = {"category_code": category_code, "lon": lon, "lat": lat, "version": version,
             "asset_code": asset_code or ""}  # fmt: skip
    try:
        body = RouteRequest(
            category_code=category_code, lon=lon, lat=lat, rule_set_version=version,
            asset_code=asset_code or None,
        )  # fmt: skip
        decision = routing.dry_run(session, me, settings, body)
    except ValidationError as invalid:
        return _routing_page(
            request, session, settings, me, status_code=422, asked=asked,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    except Problem as problem:
        if problem.status in (401, 403):
            raise
        return _routing_page(
            request, session, settings, me, status_code=problem.status, asked=asked,
            error=problem.detail or problem.title,
        )  # fmt: skip
    return _routing_page(request, session, settings, me, decision=decision, asked=asked)


@router.post("/admin/routing/{version}/activate")
def activate_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    version: DatabaseId,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    rule_sets.activate_rule_set(session, me, version, reason or None)
    return _back(f"{PREFIX}/admin/routing", "done")


@router.post("/admin/routing/rollback")
def roll_back_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    rule_sets.roll_back_rule_set(session, me, reason or None)
    return _back(f"{PREFIX}/admin/routing", "done")


@router.get("/admin/users/{user_id}/segments")
def chief_segments_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    user_id: DatabaseId,
) -> Response:
    """A road chief's segments (路长责任路段), as `GET /api/v1/admin/users/{id}/segments`."""
    return _segments_page(request, session, settings, me, user_id)


def _segments_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    user_id: int,
    *,
    status_code: int = 200,
    error: str | None = None,
    field_errors: list[str] | None = None,
    conflicts: list[dict[str, str]] | None = None,
    asked: str | None = None,
) -> Response:
    user = accounts.get_user(session, me, user_id)
    segments = accounts.get_chief_segments(session, me, user_id)
    return render(
        request, settings, "chief_segments.html", me, status_code=status_code, user=user,
        segments=segments, error=error, field_errors=field_errors or [],
        conflicts=conflicts or [],
        asked=asked if asked is not None else "\n".join(s.code for s in segments),
    )  # fmt: skip


@router.post("/admin/users/{user_id}/segments")
def set_chief_segments(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    user_id: DatabaseId,
    segment_codes: Annotated[str, Form(max_length=20000)] = "",
    reassign: Annotated[str | None, Form(max_length=5)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Make these exactly the chief's segments (`set_chief_segments`): one code a line;
    segments another chief of the level holds move only with `reassign`."""
    check_csrf(request, settings, csrf)
    codes = [c.strip() for c in segment_codes.replace(",", "\n").splitlines() if c.strip()]
    try:
        accounts.set_chief_segments(session, me, user_id, codes, reassign=reassign == "true")
    except Problem as problem:
        if problem.status in (401, 403, 404):
            raise
        return _segments_page(
            request, session, settings, me, user_id, status_code=problem.status,
            error=problem.detail or problem.title,
            field_errors=[e.message for e in problem.errors or []],
            conflicts=problem.extra.get("conflicts") or [], asked="\n".join(codes),
        )  # fmt: skip
    return _back(f"{PREFIX}/admin/users/{user_id}/segments", "done")


@router.get("/map")
def map_page(
    request: Request,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    span = _recent(settings, date_from, date_to)
    return render(
        request, settings, "map.html", me, span=span,
        cases_src=f"{PREFIX}/map/cases.geojson?{urlencode(span)}",
        may_read_cases=Permission.CASES_READ in me.permissions,
    )  # fmt: skip


#: Cases the map draws at most (markers cluster; the rest are for the search and export).
MAP_CASE_LIMIT = 5000


def _recent(settings: Settings, date_from: date | None, date_to: date | None) -> dict[str, str]:
    """The days asked, else the last 30."""
    last = date_to or datetime.now(settings.zone).date()
    first = date_from or last - timedelta(days=29)
    return {"from": first.isoformat(), "to": last.isoformat()}


@router.get("/map/cases.geojson")
def cases_geojson(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """Cases reported in the days asked, in the person's scope (`assessment.search`, as the
    case search API), as points in the tiles' datum; the browser clusters them."""
    filters = search.CaseFilter.model_validate(_recent(settings, date_from, date_to))
    features: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(features) < MAP_CASE_LIMIT:
        rows, cursor = search.search(
            session, settings, me, filters, limit=min(500, MAP_CASE_LIMIT - len(features)),
            cursor=cursor,
        )  # fmt: skip
        for row in rows:
            lon, lat = on_tiles(settings, row.lon, row.lat)
            features.append({
                "type": "Feature", "id": row.number,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "layer": "case", "status": row.status.value,
                    "label": f"{row.number} {CASE_STATUS_ZH[row.status]} "
                             f"{row.category_name or row.category_code}",
                    "href": f"{PREFIX}/cases/{row.number}",
                },
            })  # fmt: skip
        if cursor is None:
            break
    return JSONResponse(
        {"type": "FeatureCollection", "features": features, "truncated": cursor is not None}
    )


#: What the map draws of each layer, at most (the demo district has a few hundred).
MAP_LAYER_LIMIT = 5000


@router.get("/map/territory.geojson")
def territory_geojson(session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """Streets, communities and road segments in the person's sight (`list_features`, as
    the territory API), in the datum of the configured tiles."""
    features = []
    for layer, kind in (
        (Layer.JURISDICTIONS, "jurisdiction"),
        (Layer.ROAD_SEGMENTS, "segment"),
    ):
        page, _ = territory.list_features(
            session, me, layer, bbox=None, filters={}, limit=MAP_LAYER_LIMIT, cursor=None
        )
        for feature in page:
            facts = feature["properties"]
            facts = facts.model_dump(mode="json") if hasattr(facts, "model_dump") else dict(facts)
            if kind == "jurisdiction" and facts.get("level") not in ("street", "community"):
                continue
            features.append(
                {
                    "type": "Feature",
                    "id": feature["id"],
                    "geometry": map_geometry(settings, feature["geometry"]),
                    "properties": {"layer": kind, "label": facts.get("name") or feature["id"]},
                }
            )
    return JSONResponse({"type": "FeatureCollection", "features": features})


@router.get("/photos/{photo_id}/{variant}")
def photo(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    photo_id: DatabaseId,
    variant: media.Variant,
) -> Response:
    """A photo the person may see (the media service decides), for the case page."""
    return photo_response(media.photo_file(session, settings, me, photo_id, variant), settings)


def install_console(app: FastAPI) -> None:
    """The console's pages and its static files (htmx, Leaflet: vendored, no CDN)."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")


__all__ = ["CsrfRefused", "install_console", "router"]
