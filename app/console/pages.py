"""How the console shows things: Chinese names, countdown colours, templates.

Nothing here decides who may see or do what: the services do, as for the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy
import shapely
from fastapi import Request
from fastapi.templating import Jinja2Templates
from shapely.geometry import mapping, shape
from starlette.responses import Response

from app.access.rules import Principal
from app.accounts.models import Role
from app.cases.models import CASE_STATUS_NAMES, CaseEventKind, TaskStatus
from app.cases.workflow import BY_ACTION, STEPS, Action, Actor, may_act
from app.console.session import CSRF_FIELD, CSRF_HEADER, PREFIX, csrf_token
from app.core.coords import wgs84_to_gcj02
from app.core.moments import to_local
from app.whistles.schemas import SummonsStatus

if TYPE_CHECKING:
    from app.settings import Settings

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

#: The API's own names (exports, Open311 notes): one name per status everywhere.
CASE_STATUS_ZH = CASE_STATUS_NAMES
TASK_STATUS_ZH = {
    TaskStatus.PENDING: "待签收",
    TaskStatus.SIGNED: "处置中",
    TaskStatus.DONE: "已反馈",
    TaskStatus.RELEASED: "已释放",
    TaskStatus.RETURN_REQUESTED: "申请退回",
    TaskStatus.RETURNED: "已退回",
}
EVENT_ZH = {
    CaseEventKind.REPORTED: "上报",
    CaseEventKind.DEADLINE_WARNING: "时限预警",
    CaseEventKind.SIGN_FOR_OVERDUE: "签收超时",
    CaseEventKind.OVERDUE: "处置超期",
    CaseEventKind.ESCALATED: "超期升级",
    CaseEventKind.VERIFICATION_OVERDUE: "核查超期",
}
ROLE_ZH = {
    Role.ROAD_CHIEF: "路长",
    Role.PATROLLER: "巡查员",
    Role.SUPERVISOR: "监督员",
    Role.DISPATCHER: "指挥中心",
    Role.DEPARTMENT_STAFF: "职能部门",
    Role.ASSESSOR: "考评员",
    Role.ADMIN: "管理员",
}
REJECT_REASONS_ZH = {
    "invalid": "无效信息",
    "duplicate": "重复上报",
    "out_of_scope": "不属于受理范围",
}
FLASH = {
    "done": "操作已完成",
    "signed": "已签收",
    "signed_out": "您已退出登录",
}
SUMMONS_ZH = {
    SummonsStatus.WAITING: "待报到",
    SummonsStatus.ON_TIME: "按时报到",
    SummonsStatus.LATE: "超时报到",
    SummonsStatus.MISSED: "未报到",
}
URGENCY_ZH = {"normal": "一般", "urgent": "紧急", "critical": "特急"}


def action_zh(action: str) -> str:
    try:
        return BY_ACTION[Action(action)].name_zh
    except ValueError:
        return action


def event_zh(kind: str) -> str:
    """An event's Chinese name: the workflow step that records it, else its own."""
    for transition in BY_ACTION.values():
        if transition.event.value == kind:
            return transition.name_zh
    known = {k.value: k for k in CaseEventKind}
    return EVENT_ZH.get(known[kind], kind) if kind in known else kind


def category_zh(categories: dict[str, Any] | None, code: str) -> str:
    """A category's name with its code (the taxonomy is configuration, seen by all)."""
    node = (categories or {}).get(code)
    return f"{node.name}（{code}）" if node is not None else code


def countdown(overdue: bool, warned: bool) -> str:
    """The countdown colour of a task: red overdue, amber past the warning point."""
    return "red" if overdue else "amber" if warned else "green"


def hours_zh(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours < 0:
        return f"已超期 {-hours:.1f} 工作小时"
    return f"剩余 {hours:.1f} 工作小时"


def moment(value: datetime | None) -> str:
    """A moment on a page: in the zone the service speaks, whatever zone it came in."""
    return f"{to_local(value):%Y-%m-%d %H:%M}" if value else "—"


def on_tiles(settings: Settings, lon: float, lat: float) -> tuple[float, float]:
    """A WGS 84 point in the datum of the configured tiles: Amap and Tencent tiles are
    drawn in GCJ-02, so what lies on them must be shifted alike (Tianditu's CGCS2000 and
    the territory-only base map need nothing)."""
    if settings.console_tile_url and settings.console_tile_coordinates == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    return lon, lat


def map_geometry(settings: Settings, geometry: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON geometry in the datum of the configured tiles (see `on_tiles`)."""
    if not (settings.console_tile_url and settings.console_tile_coordinates == "gcj02"):
        return geometry
    shifted = shapely.transform(shape(geometry), _shift_points)
    return dict(mapping(shifted))


def _shift_points(points: Any) -> Any:
    return numpy.array([wgs84_to_gcj02(float(x), float(y)) for x, y in points])


#: Heat ramp (light to dark red), five steps of the busiest cell's count.
HEAT_RAMP = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
HEAT_LEGEND = ("≤20%", "≤40%", "≤60%", "≤80%", ">80%")
COVERAGE_COLOURS = {"complete": "#1b7f3b", "partial": "#e8a317", "none": "#b3261e"}
COVERAGE_ZH = {"complete": "完整巡查", "partial": "部分巡查", "none": "未巡查"}
GRADE_ZH = {"excellent": "优秀", "outstanding": "卓越", "ultimate": "极致"}


def heat_step(cases: int, most: int) -> int:
    """A cell's step on `HEAT_RAMP`: its share of the busiest cell's count, in fifths."""
    if most <= 0 or cases <= 0:
        return 0
    return min(len(HEAT_RAMP) - 1, (cases * len(HEAT_RAMP) - 1) // most)


def home_of(principal: Principal) -> str:
    """Each role's first page."""
    roles = principal.roles
    if Role.ADMIN in roles:
        return f"{PREFIX}/admin/users"
    if Role.DISPATCHER in roles:
        return f"{PREFIX}/dispatch"
    if Role.DEPARTMENT_STAFF in roles:
        return f"{PREFIX}/tasks"
    if Role.ASSESSOR in roles:
        return f"{PREFIX}/kpis"
    return f"{PREFIX}/verification"


def menu(principal: Principal) -> list[tuple[str, str]]:
    """The pages the person's roles lead to (the pages themselves ask the services)."""
    roles = principal.roles
    admin = Role.ADMIN in roles
    items: list[tuple[str, str]] = []
    if admin or Role.DEPARTMENT_STAFF in roles:
        items.append((f"{PREFIX}/tasks", "待办任务"))
    if admin or Role.DISPATCHER in roles:
        items.append((f"{PREFIX}/dispatch", "立案派遣"))
        items.append((f"{PREFIX}/alarms", "预警督办"))
        items.append((f"{PREFIX}/whistles", "吹哨报到"))
    if admin or roles & {Role.SUPERVISOR, Role.ROAD_CHIEF, Role.PATROLLER}:
        items.append((f"{PREFIX}/verification", "待核查"))
    if admin or roles & {Role.ASSESSOR, Role.DISPATCHER, Role.SUPERVISOR}:
        items.append((f"{PREFIX}/kpis", "考核评价"))
        items.append((f"{PREFIX}/heatmap", "热力图"))
        items.append((f"{PREFIX}/coverage", "巡查覆盖"))
        items.append((f"{PREFIX}/inspections", "实地考评"))
    items.append((f"{PREFIX}/map", "地图"))
    if admin:
        items.append((f"{PREFIX}/admin/users", "用户"))
        items.append((f"{PREFIX}/admin/audit", "审计日志"))
        items.append((f"{PREFIX}/admin/webhooks", "Webhook"))
        items.append((f"{PREFIX}/admin/routing", "分拨规则"))
    return items


templates.env.globals.update(
    CASE_STATUS_ZH=CASE_STATUS_ZH,
    TASK_STATUS_ZH=TASK_STATUS_ZH,
    ROLE_ZH=ROLE_ZH,
    URGENCY_ZH=URGENCY_ZH,
    REJECT_REASONS_ZH=REJECT_REASONS_ZH,
    CSRF_FIELD=CSRF_FIELD,
    CSRF_HEADER=CSRF_HEADER,
    PREFIX=PREFIX,
    action_zh=action_zh,
    event_zh=event_zh,
    countdown=countdown,
    category_zh=category_zh,
    hours_zh=hours_zh,
    moment=moment,
)


def render(
    request: Request,
    settings: Settings,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    categories: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    return templates.TemplateResponse(
        request,
        template,
        {
            "me": principal,
            "menu": menu(principal) if principal else [],
            "csrf": csrf_token(request, settings),
            "categories": categories,
            "tiles": {
                "url": settings.console_tile_url,
                "crs": settings.console_tile_coordinates,
                "attribution": settings.console_tile_attribution,
            },
            # Fixed messages by code: a link cannot make the console say anything else.
            "flash": FLASH.get(request.query_params.get("flash", "")),
            **context,
        },
        status_code=status_code,
    )


@dataclass(frozen=True)
class StepForm:
    """One step the page offers: the workflow table's row, and the units it may name."""

    action: str
    name_zh: str
    needs: frozenset[str]
    reasons: tuple[str, ...] | None
    #: Task steps: the units to act for (the person's own; for the centre, each unit
    #: whose task is in a state the step starts from).
    units: tuple[str, ...] = ()


#: Steps a desk cannot take: verification needs the verifier on site (the phone app).
DESK_EXCLUDED = frozenset({Action.VERIFY_PASS, Action.VERIFY_FAIL})


def open_steps(me: Principal, case: Any) -> list[StepForm]:
    """The steps of `STEPS` open to this person on this case now, read from the
    table as the service reads it; the service checks each again when it is taken."""
    forms = []
    for t in STEPS:
        if t.action in DESK_EXCLUDED or case.status not in t.sources:
            continue
        if not may_act(me, t.actors):
            continue
        units: tuple[str, ...] = ()
        if t.task_sources is not None:
            if Actor.TASK_UNIT_STAFF in t.actors and me.unit_code is not None:
                units = tuple(
                    task.unit.code
                    for task in case.tasks
                    if task.unit.code == me.unit_code and task.status in t.task_sources
                )
            if not units and may_act(me, t.actors - {Actor.TASK_UNIT_STAFF}):
                units = tuple(
                    task.unit.code for task in case.tasks if task.status in t.task_sources
                )
            if not units:
                continue
        forms.append(
            StepForm(
                t.action.value, t.name_zh, frozenset(n.value for n in t.needs), t.reasons, units
            )
        )
    return forms
