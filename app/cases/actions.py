"""Taking a step of the closed loop: checked against `workflow.TRANSITIONS`, then applied.

Every step checks, in this order: the case is visible, the caller states the version they
saw (If-Match or `version`) and it is current, the step is allowed from the case's status,
the caller is one of its actors, and its needs (note, photos, standing on site) are met.
Then it changes the case and its tasks and appends one event; the version rises, so of two
people acting on the same version only the first wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.accounts.access import Forbidden, Permission, Principal
from app.accounts.models import Role, SegmentChief
from app.calendar.service import WorkingCalendar, working_calendar
from app.cases.models import Case, CaseEvent, CaseStatus, CaseTask, TaskStatus
from app.cases.schemas import ActionIn, CaseOut, TaskOut
from app.cases.service import history
from app.cases.workflow import ACTOR_ROLES, BY_ACTION, Action, Actor, Transition
from app.core.config import Settings
from app.core.coords import to_wgs84
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.core.geo import LocalFrame
from app.media.service import usable_photos, use_photo
from app.routing.models import RoutingDecision
from app.routing.schemas import UnitBrief
from app.routing.service import routing_context
from app.territory.locator import check_coordinates
from app.territory.models import RoadSegment, Unit
from app.territory.service import UnknownUnit


class VersionRequired(Problem):
    code = "version_required"
    status = 428
    title = "请在 If-Match 或 version 中给出您看到的案件版本"


class VersionConflict(Problem):
    code = "version_conflict"
    status = 409
    title = "案件已被他人更新，请刷新后再操作"


class TransitionNotAllowed(Problem):
    code = "transition_not_allowed"
    status = 409
    title = "当前状态下不能执行该操作"


class NoTaskForUnit(Problem):
    code = "no_task_for_unit"
    status = 409
    title = "本单位在该案件上没有可办理的任务"


class NoteRequired(Problem):
    code = "note_required"
    status = 422
    title = "该操作须填写说明"


class PhotosRequired(Problem):
    code = "photos_required"
    status = 422
    title = "该操作须附照片"


class LocationRequired(Problem):
    code = "location_required"
    status = 422
    title = "该操作须在现场进行，请提供当前位置"


class TooFarFromCase(Problem):
    code = "too_far_from_case"
    status = 422
    title = "离案件位置太远，请到现场核查"


def find_case(session: Session, principal: Principal, number: str) -> Case:
    """The case, if the caller may see it (in scope, or staff of a unit with a task)."""
    case = session.scalar(select(Case).where(Case.number == number))
    if case is None or not (
        principal.sees_path(case.jurisdiction_path) or _has_task(session, principal, case)
    ):
        raise NotFound("案件不存在")
    return case


def _has_task(session: Session, principal: Principal, case: Case) -> bool:
    if not (principal.has_role(Role.DEPARTMENT_STAFF) and principal.unit_code):
        return False
    return bool(
        session.scalar(
            select(
                exists().where(
                    CaseTask.case_id == case.id,
                    CaseTask.unit_id == Unit.id,
                    Unit.code == principal.unit_code,
                )
            )
        )
    )


def parse_if_match(value: str | None) -> int | None:
    """`"3"` or `W/"3"` → 3."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() else -1


def _task_of(session: Session, case: Case, unit_code: str) -> CaseTask:
    task = session.scalar(
        select(CaseTask)
        .join(Unit, CaseTask.unit_id == Unit.id)
        .where(CaseTask.case_id == case.id, Unit.code == unit_code)
    )
    if task is None:
        raise NoTaskForUnit(f"“{unit_code}”在该案件上没有任务", unit_code=unit_code)
    return task


def _is_verifier(session: Session, principal: Principal, case: Case) -> bool:
    if principal.unrestricted or principal.has_role(Role.SUPERVISOR):
        return True
    if principal.user_id is not None and case.reporter_user_id == principal.user_id:
        return True
    return bool(
        principal.has_role(Role.ROAD_CHIEF)
        and case.segment_code
        and session.scalar(
            select(
                exists().where(
                    SegmentChief.user_id == principal.user_id,
                    SegmentChief.segment_id == RoadSegment.id,
                    RoadSegment.code == case.segment_code,
                )
            )
        )
    )


def _check_actor(
    session: Session,
    principal: Principal,
    case: Case,
    transition: Transition,
    unit_code: str | None,
) -> CaseTask | None:
    """The caller's standing for this step: the task they act on, if a task step."""
    if not principal.roles & set().union(*(ACTOR_ROLES[a] for a in transition.actors)):
        raise Forbidden(f"“{transition.name_zh}”不是您的角色可以执行的操作")
    if Actor.TASK_UNIT_STAFF in transition.actors:
        code = unit_code or principal.unit_code
        if code is None:
            raise UnknownUnit("请指明办理的单位（unit_code）")
        principal.require_unit(code)
        return _task_of(session, case, code)
    if Actor.VERIFIER in transition.actors and not _is_verifier(session, principal, case):
        raise Forbidden("只有上报人、该路段的路长或监督员可以核查")
    return None


def _check_needs(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    t: Transition,
    body: ActionIn,
) -> Any:
    if t.needs_note and not body.note:
        raise NoteRequired(f"“{t.name_zh}”须填写说明")
    if t.needs_photos and not body.photo_ids:
        raise PhotosRequired(f"“{t.name_zh}”须附现场照片")
    photos = usable_photos(session, principal, body.photo_ids)
    point = None
    if body.lon is not None and body.lat is not None:
        check_coordinates(settings, body.lon, body.lat)
        lon, lat = to_wgs84(body.lon, body.lat, body.coordinate_system)
        point = Point(lon, lat)
    if t.needs_location:
        if point is None:
            raise LocationRequired()
        place = to_shape(case.geom)
        distance = LocalFrame(place.x, place.y).distance_m(point)
        if distance > settings.verify_max_distance_m:
            raise TooFarFromCase(
                f"您距案件位置 {distance:.0f} 米，须在 {settings.verify_max_distance_m:.0f} 米以内",
                distance_m=round(distance, 1),
            )
    return photos, point


def perform(
    session: Session,
    settings: Settings,
    principal: Principal,
    number: str,
    action: Action,
    body: ActionIn,
    if_match: str | None,
) -> CaseOut:
    """Take one step on case `number`; every refusal changes nothing."""
    principal.require(Permission.CASES_READ)
    case = find_case(session, principal, number)
    seen = parse_if_match(if_match) if if_match is not None else body.version
    if seen is None:
        raise VersionRequired()
    if seen != case.version:
        raise VersionConflict(
            f"您看到的是第 {seen} 版，案件已是第 {case.version} 版",
            case=case_out(session, settings, principal, case).model_dump(mode="json"),
        )
    t = BY_ACTION[action]
    if case.status not in t.sources:
        raise TransitionNotAllowed(
            f"案件当前为“{case.status.value}”，不能“{t.name_zh}”",
            status_now=case.status.value,
            action=action.value,
        )
    task = _check_actor(session, principal, case, t, body.unit_code)
    photos, point = _check_needs(session, settings, principal, case, t, body)
    now = utcnow()
    before = case.status
    calendar = working_calendar(session, settings)  # one read, for the step and the answer
    # One flush at the end: the case row is updated once, so its version rises by one.
    with session.no_autoflush:
        detail = _apply(session, calendar, case, t, task, body, principal, now)
    # Every step updates the case row, even one that only touched a task: so the version
    # rises and a concurrent step on the old version fails.
    case.updated_at = now
    session.add(
        CaseEvent(
            case_id=case.id,
            occurred_at=now,
            kind=t.event,
            actor_user_id=principal.user_id,
            actor_role=_acting_role(principal, t),
            from_status=before,
            to_status=case.status if case.status != before else None,
            note=body.note,
            photo_ids=[p.id for p in photos],
            geom=from_shape(point, srid=4326) if point is not None else None,
            detail=detail,
        )
    )
    for photo in photos:
        use_photo(session, photo, f"case:{case.id}", case.jurisdiction_path)
    try:
        session.flush()  # UPDATE ... WHERE version = seen: a concurrent step makes this fail
        session.commit()
    except StaleDataError:
        session.rollback()
        raise VersionConflict("案件刚被他人更新，请刷新后再操作") from None
    return case_out(session, settings, principal, case, calendar)


def _acting_role(principal: Principal, t: Transition) -> str | None:
    roles = set().union(*(ACTOR_ROLES[a] for a in t.actors)) & principal.roles
    return sorted(r.value for r in roles)[0] if roles else None


def _limits(case: Case, session: Session) -> dict[str, float]:
    node = routing_context(session).taxonomy.get(case.category_code)
    return dict(node.time_limits.get(case.urgency.value, {})) if node else {}


def _due(calendar: WorkingCalendar, start: datetime, hours: float | None) -> datetime | None:
    return calendar.add_working_hours(start, hours) if hours else None


def _apply(
    session: Session,
    calendar: WorkingCalendar,
    case: Case,
    t: Transition,
    task: CaseTask | None,
    body: ActionIn,
    principal: Principal,
    now: datetime,
) -> dict[str, Any]:
    """Change the case (and its tasks) as the step says; returns the event's details."""
    detail: dict[str, Any] = {}
    if t.action is Action.DISPATCH:
        detail = _dispatch(session, calendar, case, body, now)
    elif t.action is Action.SIGN_FOR:
        assert task is not None
        _require_task(task, TaskStatus.PENDING, "签收")
        task.status, task.signed_at, task.signed_by_user_id = (
            TaskStatus.SIGNED,
            now,
            principal.user_id,
        )
        if task.is_lead:
            case.status = CaseStatus.IN_PROGRESS
        detail = {"unit_id": task.unit_id}
    elif t.action in (Action.FEED_BACK, Action.RELEASE):
        if t.action is Action.FEED_BACK:
            assert task is not None
            _require_task(task, TaskStatus.SIGNED, "反馈")
            task.status, task.done_at = TaskStatus.DONE, now
            task.done_by_user_id = principal.user_id
        else:
            task = _task_of(session, case, body.unit_code or "")
            if task.is_lead or task.status is TaskStatus.DONE:
                raise TransitionNotAllowed("只能释放尚未完成的协办单位任务")
            task.status = TaskStatus.RELEASED
        if case.status is CaseStatus.IN_PROGRESS and _all_handled(session, case):
            case.status = CaseStatus.AWAITING_VERIFICATION
            case.due_at = _due(calendar, now, _limits(case, session).get("verify"))
        detail = {"unit_id": task.unit_id}
    elif t.action is Action.VERIFY_FAIL:
        case.rework_count += 1
        handle_due = _due(calendar, now, _limits(case, session).get("handle"))
        for other in session.scalars(select(CaseTask).where(CaseTask.case_id == case.id)):
            if other.status is TaskStatus.DONE:
                other.status, other.handle_due_at = TaskStatus.SIGNED, handle_due
        case.status, case.due_at = CaseStatus.IN_PROGRESS, handle_due
        detail = {"rework": case.rework_count}
    elif t.action is Action.URGE:
        case.urge_count += 1
    if t.target is not None:
        case.status = t.target
    if case.status is CaseStatus.CLOSED:
        case.closed_at = now
    if body.reason:
        detail["reason"] = body.reason
    return detail


def _require_task(task: CaseTask, status: TaskStatus, what: str) -> None:
    if task.status is not status:
        raise TransitionNotAllowed(
            f"本单位的任务为“{task.status.value}”，不能{what}", task_status=task.status.value
        )


def _all_handled(session: Session, case: Case) -> bool:
    """The lead's task is done and every cooperating task is done or released."""
    tasks = list(session.scalars(select(CaseTask).where(CaseTask.case_id == case.id)))
    return all(
        t.status is TaskStatus.DONE or (not t.is_lead and t.status is TaskStatus.RELEASED)
        for t in tasks
    )


def _dispatch(
    session: Session, calendar: WorkingCalendar, case: Case, body: ActionIn, now: datetime
) -> dict[str, Any]:
    """One task per unit: the routing decision's, or the dispatcher's own (with a reason)."""
    decision = (
        session.get(RoutingDecision, case.routing_decision_id) if case.routing_decision_id else None
    )
    routed = [*decision.lead_unit_codes, *decision.cooperating_unit_codes] if decision else []
    codes = list(dict.fromkeys(body.units or routed))
    if not codes:
        raise UnknownUnit("该案件没有分拨结果，请指定派遣单位（units）")
    if body.units and codes != routed and not body.reason:
        raise NoteRequired("改派须说明理由（reason）")
    units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(codes)))}
    missing = [c for c in codes if c not in units]
    if missing:
        raise UnknownUnit(f"单位不存在：{'、'.join(missing)}", unit_codes=missing)
    limits = _limits(case, session)
    sign_due, handle_due = (
        _due(calendar, now, limits.get("sign_for")),
        _due(calendar, now, limits.get("handle")),
    )
    lead_count = len(decision.lead_unit_codes) if decision and not body.units else 1
    for i, code in enumerate(codes):
        session.add(
            CaseTask(
                case_id=case.id,
                unit_id=units[code].id,
                is_lead=i < lead_count,
                status=TaskStatus.PENDING,
                assigned_at=now,
                sign_for_due_at=sign_due,
                handle_due_at=handle_due,
            )
        )
    case.due_at = handle_due
    return {"units": codes, "changed_from_routing": bool(body.units) and codes != routed}


def case_out(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    calendar: WorkingCalendar | None = None,
) -> CaseOut:
    zone = settings.zone
    calendar = calendar or working_calendar(session, settings)
    now = utcnow()
    rows = session.execute(
        select(CaseTask, Unit)
        .join(Unit, CaseTask.unit_id == Unit.id)
        .where(CaseTask.case_id == case.id)
        .order_by(CaseTask.is_lead.desc(), CaseTask.id)
    ).all()
    point = to_shape(case.geom)

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(zone) if value else None

    tasks = [
        TaskOut(
            unit=UnitBrief(code=unit.code, name=unit.name, kind=unit.kind),
            is_lead=task.is_lead,
            status=task.status,
            sign_for_due_at=local(task.sign_for_due_at),
            handle_due_at=local(task.handle_due_at),
            remaining_working_hours=round(
                calendar.working_hours_between(now, task.handle_due_at), 2
            )
            if task.handle_due_at and task.status in (TaskStatus.PENDING, TaskStatus.SIGNED)
            else None,
            signed_at=local(task.signed_at),
            done_at=local(task.done_at),
        )
        for task, unit in rows
    ]
    return CaseOut(
        number=case.number or "",
        version=case.version,
        status=case.status,
        category_code=case.category_code,
        urgency=case.urgency,
        description=case.description,
        reported_at=case.reported_at.astimezone(zone),
        due_at=local(case.due_at),
        closed_at=local(case.closed_at),
        lon=point.x,
        lat=point.y,
        street_code=case.street_code,
        community_code=case.community_code,
        grid_cell_code=case.grid_cell_code,
        segment_code=case.segment_code,
        report_count=case.report_count,
        rework_count=case.rework_count,
        urge_count=case.urge_count,
        fixed_on_spot=case.fixed_on_spot,
        tasks=tasks,
        history=history(session, case.id, zone),
    )


def get_case(session: Session, settings: Settings, principal: Principal, number: str) -> CaseOut:
    principal.require(Permission.CASES_READ)
    return case_out(session, settings, principal, find_case(session, principal, number))
