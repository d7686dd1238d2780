"""The web console (Web 控制台) under /console: pages for desk work, in Chinese.

Every page calls the same service functions as the API, with the signed-in person's
`Principal`: what a page lists, shows or lets one do is what the API would answer that
person. Pages are server-rendered (Jinja2); htmx swaps parts of them in place.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

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
from app.assessment import kpis as kpi_table
from app.assessment import rankings, search
from app.assessment import service as assessment
from app.audit import service as audit
from app.audit.models import AuditEventType
from app.cases import actions, queues
from app.cases.models import TaskStatus
from app.cases.schemas import ActionIn
from app.cases.workflow import Action
from app.console.pages import HERE, home_of, map_geometry, on_tiles, open_steps, render
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
from app.core.inputs import DatabaseId
from app.media import service as media
from app.media.router import photo_response
from app.routing.service import routing_context
from app.territory import service as territory
from app.territory.importer import Layer

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
    )  # fmt: skip


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


@router.get("/map")
def map_page(request: Request, settings: SettingsDep, me: Me) -> Response:
    return render(request, settings, "map.html", me)


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
