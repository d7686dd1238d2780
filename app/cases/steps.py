"""Taking a step of the closed loop: checked against `workflow.STEPS`, then applied.

Every step checks, in this order: the case is visible, the caller states the version they
saw (If-Match or `version`) and it is current, the step is allowed from the case's status,
the caller is one of its actors, and its needs (note, photos, standing on site) are met.
Then it changes the case and its tasks and appends one event; the version rises, so of two
people acting on the same version only the first wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.access.rules import Forbidden, Permission, Principal
from app.calendar.service import WorkingCalendar, working_calendar
from app.cases.deadlines import next_alarm, set_handle_deadline, shift_for_pause
from app.cases.errors import (
    DeadlineInPast,
    DeadlineNotLater,
    DeadlineRequired,
    DeadlineTooFar,
    DecisionRequired,
    ExtensionPending,
    LocationRequired,
    NoExtensionRequest,
    NoTaskForUnit,
    NoteRequired,
    PhotosRequired,
    ReasonRequired,
    ReopenWindowPassed,
    TooFarFromCase,
    TransitionNotAllowed,
    UnitRequired,
    VersionConflict,
    VersionRequired,
)
from app.cases.models import (
    ACTIVE_TASK_STATUSES,
    HANDLING_STATUSES,
    OPEN_TASK_STATUSES,
    Case,
    CaseStatus,
    CaseTask,
    TaskStatus,
)
from app.cases.relations import may_verify
from app.cases.schemas import ActionIn, CaseOut
from app.cases.service import record_event
from app.cases.view import case_out, find_case
from app.cases.workflow import (
    BY_ACTION,
    Action,
    Actor,
    Need,
    Transition,
    acting_role,
    may_act,
)
from app.core.database import utcnow
from app.core.errors import Problem
from app.core.geo import LocalFrame
from app.core.moments import local_isoformat, to_local
from app.media.service import usable_photos, use_photo
from app.routing.models import RoutingDecision
from app.routing.service import routing_context
from app.territory.locator import wgs84_in_area
from app.territory.models import Unit
from app.territory.service import UnknownUnit

if TYPE_CHECKING:
    from app.settings import Settings

#: The furthest a deadline may be moved: beyond it a case is hung up (挂账), not extended.
MAX_EXTENSION = timedelta(days=366)


def parse_if_match(value: str | None) -> int | None:
    """`"3"` or `W/"3"` → 3."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() else -1


def _task_of(tasks: list[tuple[CaseTask, Unit]], unit_code: str) -> CaseTask:
    task = next((t for t, unit in tasks if unit.code == unit_code), None)
    if task is None:
        raise NoTaskForUnit(f"“{unit_code}”在该案件上没有任务", unit_code=unit_code)
    return task


_LOCKED_TASKS = (
    select(CaseTask, Unit)
    .join(Unit, CaseTask.unit_id == Unit.id)
    .where(CaseTask.case_id == bindparam("case_id"))
    .order_by(CaseTask.id)
    .with_for_update(of=CaseTask)
)


def _locked_tasks(session: Session, case: Case) -> list[tuple[CaseTask, Unit]]:
    """The case's tasks with their units, in one read. Locked (PostgreSQL): the sweep
    marking a task meanwhile waits for this step, and this step sees its marks, so neither
    overwrites the other."""
    return [(task, unit) for task, unit in session.execute(_LOCKED_TASKS, {"case_id": case.id})]


def _check_actor(
    session: Session,
    principal: Principal,
    case: Case,
    transition: Transition,
    unit_code: str | None,
    tasks: list[tuple[CaseTask, Unit]],
) -> CaseTask | None:
    """The caller's standing for this step, and the task it acts on (a task step)."""
    if not may_act(principal, transition.actors):
        raise Forbidden(f"“{transition.name_zh}”不是您的角色可以执行的操作")
    if Actor.VERIFIER in transition.actors and not (
        may_act(principal, transition.actors - {Actor.VERIFIER})
        or may_verify(session, principal, case)
    ):
        raise Forbidden(f"只有上报人、该路段的路长或监督员可以“{transition.name_zh}”")
    if transition.task_sources is None:
        return None
    if Actor.TASK_UNIT_STAFF in transition.actors:
        code = unit_code or principal.unit_code
        if code is None:
            raise UnknownUnit("请指明办理的单位（unit_code）")
        principal.require_unit(code)
    else:  # the centre acting on a unit's task
        code = unit_code
        if code is None:
            raise UnitRequired(f"“{transition.name_zh}”须指明单位（unit_code）")
    task = _task_of(tasks, code)
    if task.status not in transition.task_sources:
        raise TransitionNotAllowed(
            f"该单位的任务为“{task.status.value}”，不能“{transition.name_zh}”",
            task_status=task.status.value,
        )
    return task


def _check_needs(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    t: Transition,
    body: ActionIn,
    now: datetime,
) -> Any:
    if Need.NOTE in t.needs and not body.note:
        raise NoteRequired(f"“{t.name_zh}”须填写说明")
    if Need.PHOTOS in t.needs and not body.photo_ids:
        raise PhotosRequired(f"“{t.name_zh}”须附现场照片")
    if t.reasons and body.reason not in t.reasons:
        raise ReasonRequired(
            f"“{t.name_zh}”须给出理由（reason）：{' / '.join(t.reasons)}", reasons=list(t.reasons)
        )
    if Need.DECISION in t.needs and body.approved is None:
        raise DecisionRequired(f"“{t.name_zh}”须给出决定（approved: true 或 false）")
    if Need.DEADLINE in t.needs and body.new_due_at is None:
        raise DeadlineRequired(f"“{t.name_zh}”须给出新的期限（new_due_at）")
    if body.new_due_at is not None and body.new_due_at <= now:
        raise DeadlineInPast(f"新的期限 {to_local(body.new_due_at):%Y-%m-%d %H:%M} 已经过去")
    if body.new_due_at is not None and body.new_due_at > now + MAX_EXTENSION:
        raise DeadlineTooFar(f"新的期限不能超过 {MAX_EXTENSION.days} 天之后；长期问题请挂账")
    photos = usable_photos(session, principal, body.photo_ids)
    sent = body.point()
    point = Point(*wgs84_in_area(settings, sent)) if sent is not None else None
    if Need.ON_SITE in t.needs:
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
    tasks = _locked_tasks(session, case)
    task = _check_actor(session, principal, case, t, body.unit_code, tasks)
    now = utcnow()
    photos, point = _check_needs(session, settings, principal, case, t, body, now)
    before = case.status
    calendar = working_calendar(session, settings)  # one read, for the step and the answer
    step = Step(
        session=session,
        settings=settings,
        principal=principal,
        calendar=calendar,
        case=case,
        tasks=[task for task, _ in tasks],
        units={unit.id: unit for _, unit in tasks},
        task=task,
        body=body,
        now=now,
    )
    # One flush at the end: the case row is updated once.
    with session.no_autoflush:
        try:
            detail = HANDLERS.get(action, _nothing_more)(step)
        except Problem:
            session.rollback()  # a refusal found while applying leaves nothing half-changed
            raise
        if t.fixed_target is not None:
            case.status = t.fixed_target
        if case.status not in t.targets | {before}:  # the table is the law, even for the code
            raise RuntimeError(f"{action.value} moved {before.value} to {case.status.value}")
        if case.status is CaseStatus.CLOSED:
            case.closed_at = now
        settle_deadlines(step)
    if task is not None:
        detail.setdefault("unit_id", task.unit_id)
    if body.reason:
        detail["reason"] = body.reason
    # Every step updates the case row, even one that only touched a task: its version
    # rises by one, and a concurrent step on the old version fails.
    case.updated_at = now
    case.version = seen + 1
    for photo in photos:
        use_photo(session, photo, f"case:{case.id}", case.jurisdiction_path)
    try:
        # Its flush runs UPDATE ... WHERE version = seen: a concurrent step makes it fail.
        record_event(
            session, settings, case, t.event, occurred_at=now,
            actor_user_id=principal.user_id, actor_role=acting_role(principal, t.actors),
            from_status=before, to_status=case.status if case.status != before else None,
            note=body.note, photo_ids=[p.id for p in photos],
            geom=from_shape(point, srid=4326) if point is not None else None, detail=detail,
        )  # fmt: skip
        session.commit()
    except StaleDataError:
        session.rollback()
        raise VersionConflict("案件刚被他人更新，请刷新后再操作") from None
    # The answer from what the session holds: the tasks just written and their units.
    return case_out(session, settings, principal, case, calendar, (step.tasks, step.units))


@dataclass
class Step:
    """One step being applied: the case with all its tasks, loaded once."""

    session: Session
    settings: Settings
    principal: Principal
    calendar: WorkingCalendar
    case: Case
    tasks: list[CaseTask]
    task: CaseTask | None
    body: ActionIn
    now: datetime
    #: The tasks' units by id, held for the answer (the session's identity map is weak).
    units: dict[int, Unit]

    @property
    def the_task(self) -> CaseTask:
        assert self.task is not None  # the table says this step acts on a task
        return self.task

    @cached_property
    def limits(self) -> dict[str, float]:
        """The category's time limits for the case's urgency (read once per step)."""
        node = routing_context(self.session).taxonomy.get(self.case.category_code)
        return dict(node.time_limits.get(self.case.urgency.value, {})) if node else {}

    def due(self, kind: str) -> datetime | None:
        hours = self.limits.get(kind)
        return self.calendar.add_working_hours(self.now, hours) if hours else None

    def all_handled(self) -> bool:
        """The lead's task is done and every cooperating task is done, released or
        returned; and some unit did the work."""
        ended = (TaskStatus.DONE, TaskStatus.RELEASED, TaskStatus.RETURNED)
        return any(t.status is TaskStatus.DONE for t in self.tasks) and all(
            t.status in ended and not (t.is_lead and t.status is not TaskStatus.DONE)
            for t in self.tasks
        )

    def to_verification_if_handled(self) -> None:
        if self.case.status is CaseStatus.IN_PROGRESS and self.all_handled():
            self.case.status = CaseStatus.AWAITING_VERIFICATION
            # The handling deadline stays as it was: the term the handling was held to.
            self.case.verify_due_at = self.due("verify")
            self.case.verify_overdue_at = None  # a new term (after rework) may run over again

    def handling_status(self) -> CaseStatus:
        """In progress once a lead unit has signed for it (and not given it back), else
        dispatched: the status a case being handled is in."""
        at_work = (TaskStatus.SIGNED, TaskStatus.DONE, TaskStatus.RETURN_REQUESTED)
        signed = any(t.is_lead and t.signed_at and t.status in at_work for t in self.tasks)
        return CaseStatus.IN_PROGRESS if signed else CaseStatus.DISPATCHED

    def back_to_handling(self) -> None:
        """Rework or reopen: the units that handled it handle it again, with a new term;
        with none (fixed on the spot, all returned) it goes back to dispatch."""
        handle_due = self.due("handle")
        again = [t for t in self.tasks if t.status is TaskStatus.DONE]
        for task in again:
            task.status = TaskStatus.SIGNED
            task.extension_requested_until = None
            if handle_due is not None:
                set_handle_deadline(task, self.calendar, self.settings, self.now, handle_due)
        self.case.status = CaseStatus.IN_PROGRESS if again else CaseStatus.REGISTERED
        self.case.handle_due_at = handle_due if again else None


def _nothing_more(step: Step) -> dict[str, Any]:
    return {}


def _sign_for(step: Step) -> dict[str, Any]:
    task = step.the_task
    task.status, task.signed_at = TaskStatus.SIGNED, step.now
    task.signed_by_user_id = step.principal.user_id
    if task.is_lead:
        step.case.status = CaseStatus.IN_PROGRESS
    return {}


def _feed_back(step: Step) -> dict[str, Any]:
    task = step.the_task
    task.status, task.done_at = TaskStatus.DONE, step.now
    task.done_by_user_id = step.principal.user_id
    task.extension_requested_until = None  # done: nothing left to extend
    step.to_verification_if_handled()
    # Kept with the event: the KPIs' handling time reads it instead of replaying calendars.
    hours = step.calendar.working_hours_between(task.assigned_at, step.now)
    return {"working_hours": round(hours, 2)}


def _return(step: Step) -> dict[str, Any]:
    step.the_task.status = TaskStatus.RETURN_REQUESTED
    return {}


def _decide_return(step: Step) -> dict[str, Any]:
    task = step.the_task
    if step.body.approved:
        task.status = TaskStatus.RETURNED
        task.extension_requested_until = None  # nothing left to extend
        if task.is_lead:
            task.is_lead = False
        if not any(t.is_lead and t.status in ACTIVE_TASK_STATUSES for t in step.tasks):
            # No lead left: the routing was wrong, the centre dispatches it again. The
            # other units' deadlines wait meanwhile (their alarms stop until dispatch).
            step.case.status = CaseStatus.REGISTERED
            step.case.handle_due_at = None
        else:
            step.to_verification_if_handled()
    else:
        task.status = TaskStatus.SIGNED if task.signed_at else TaskStatus.PENDING
        task.returns_refused += 1
    return {"upheld": bool(step.body.approved)}


def _asked(asked: datetime, counted: datetime) -> dict[str, str]:
    """The moment a person asked for, kept with the step when it is not the one that counts."""
    return {} if asked == counted else {"asked_due_at": local_isoformat(asked)}


def _check_later(step: Step, task: CaseTask, until: datetime) -> None:
    """An extension must add working time to the current deadline: a Saturday asked for
    after a Friday-evening deadline counts from Monday morning and adds none."""
    current = task.handle_due_at
    if current is not None and step.calendar.working_hours_between(current, until) <= 0:
        raise DeadlineNotLater(
            f"新的期限（按工作时间计为 {to_local(until):%Y-%m-%d %H:%M}）"
            f"须晚于当前期限 {to_local(current):%Y-%m-%d %H:%M}",
            due_at=local_isoformat(current),
            counted_due_at=local_isoformat(until),
        )


def _request_extension(step: Step) -> dict[str, Any]:
    task, asked = step.the_task, step.body.new_due_at
    assert asked is not None  # Need.DEADLINE
    if task.extension_requested_until is not None:
        raise ExtensionPending("本单位已有一项延期申请在审批中")
    wanted = step.calendar.next_working_moment(asked)
    _check_later(step, task, wanted)
    task.extension_requested_until = wanted
    return {"requested_due_at": local_isoformat(wanted), **_asked(asked, wanted)}


def _decide_extension(step: Step) -> dict[str, Any]:
    task = step.the_task
    requested = task.extension_requested_until
    if requested is None:
        raise NoExtensionRequest("该单位没有待审批的延期申请")
    asked = step.body.new_due_at or requested
    until = step.calendar.next_working_moment(asked)
    if step.body.approved:
        # The centre may grant another term than asked; never one past or not later.
        if until <= step.now:
            raise DeadlineInPast("申请的期限已经过去，请给出新的期限（new_due_at）")
        _check_later(step, task, until)
    task.extension_requested_until = None
    if not step.body.approved:
        return {"granted": False}
    set_handle_deadline(task, step.calendar, step.settings, task.assigned_at, until)
    task.extension_count += 1
    return {"granted": True, "new_due_at": local_isoformat(until), **_asked(asked, until)}


def _release(step: Step) -> dict[str, Any]:
    task = step.the_task
    if task.is_lead:
        raise TransitionNotAllowed("牵头单位的任务不能释放；请改派或由其退回")
    task.status = TaskStatus.RELEASED
    task.extension_requested_until = None
    step.to_verification_if_handled()
    return {}


def _verify_fail(step: Step) -> dict[str, Any]:
    step.case.rework_count += 1
    step.back_to_handling()
    return {"rework": step.case.rework_count}


def _hang_up(step: Step) -> dict[str, Any]:
    step.case.hung_up_at = step.now
    return {}


def _resume(step: Step) -> dict[str, Any]:
    case, calendar, now = step.case, step.calendar, step.now
    paused_at = case.hung_up_at or now
    for task in step.tasks:
        if task.status in ACTIVE_TASK_STATUSES:
            for name in (
                "sign_for_due_at",
                "handle_due_at",
                "handle_warn_at",
                "extension_requested_until",
            ):
                setattr(task, name, shift_for_pause(getattr(task, name), calendar, paused_at, now))
    case.handle_due_at = shift_for_pause(case.handle_due_at, calendar, paused_at, now)
    case.hung_up_at = None
    case.status = step.handling_status()
    return {"paused_working_hours": round(calendar.working_hours_between(paused_at, now), 2)}


def _reopen(step: Step) -> dict[str, Any]:
    case = step.case
    closed_at = case.closed_at or step.now
    if step.now - closed_at > timedelta(days=step.settings.reopen_days):
        raise ReopenWindowPassed(
            f"案件已于 {to_local(closed_at):%Y-%m-%d} 结案，"
            f"超过 {step.settings.reopen_days} 天不能重新打开；请重新上报"
        )
    case.reopen_count += 1
    case.closed_at = None
    step.back_to_handling()
    return {"reopen": case.reopen_count}


def _urge(step: Step) -> dict[str, Any]:
    step.case.urge_count += 1
    return {}


def _cancel(step: Step) -> dict[str, Any]:
    for task in step.tasks:  # nobody works on a cancelled case
        if task.status in ACTIVE_TASK_STATUSES:
            task.status = TaskStatus.RELEASED
            task.extension_requested_until = None
    step.case.hung_up_at = None
    return {}


def settle_deadlines(step: Step) -> None:
    """After any step: the case's handling deadline is its latest open task's, and each
    task's next alarm follows its (possibly new) state."""
    case = step.case
    if case.status in HANDLING_STATUSES:
        dues = [t.handle_due_at for t in step.tasks if t.status in OPEN_TASK_STATUSES]
        case.handle_due_at = max((d for d in dues if d is not None), default=case.handle_due_at)
    for task in step.tasks:
        task.next_alarm_at = next_alarm(task, case, step.calendar, step.settings)


def _dispatch(step: Step) -> dict[str, Any]:
    """One task per unit: the routing decision's, or the dispatcher's own (with a reason).
    A unit that returned the case or was released gets a fresh task if sent again."""
    session, case, body = step.session, step.case, step.body
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
    lead_count = len(decision.lead_unit_codes) if decision and not body.units else 1
    existing = {t.unit_id: t for t in step.tasks}
    for i, code in enumerate(codes):
        unit_id, is_lead = units[code].id, i < lead_count
        task = existing.get(unit_id)
        if task is not None and task.status in (TaskStatus.PENDING, TaskStatus.SIGNED):
            task.is_lead = is_lead  # already on the case: it keeps its work and terms
            continue
        step.units[unit_id] = units[code]
        if task is None:
            task = CaseTask(case_id=case.id, unit_id=unit_id)
            session.add(task)
            step.tasks.append(task)
        start_task(step, task, is_lead)
    case.status = step.handling_status()
    return {"units": codes, "changed_from_routing": bool(body.units) and codes != routed}


def start_task(step: Step, task: CaseTask, is_lead: bool) -> None:
    """A unit's (fresh) task on the case, with its terms counted from now."""
    task.is_lead, task.status, task.assigned_at = is_lead, TaskStatus.PENDING, step.now
    task.signed_at = task.signed_by_user_id = task.done_at = task.done_by_user_id = None
    task.sign_for_due_at, task.sign_for_overdue_at = step.due("sign_for"), None
    task.extension_requested_until = None
    handle_due = step.due("handle")
    if handle_due is not None:
        set_handle_deadline(task, step.calendar, step.settings, step.now, handle_due)


def dispatch_directly(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    units: list[Unit],
    now: datetime,
) -> None:
    """Give `units` their tasks on a new case at once (a whistle's summons: the road chief
    has called them on site), the first as lead; the case is then dispatched."""
    step = Step(
        session=session,
        settings=settings,
        principal=principal,
        calendar=working_calendar(session, settings),
        case=case,
        tasks=[],
        task=None,
        body=ActionIn(),
        now=now,
        units={unit.id: unit for unit in units},
    )
    for i, unit in enumerate(units):
        task = CaseTask(case_id=case.id, unit_id=unit.id)
        session.add(task)
        step.tasks.append(task)
        start_task(step, task, is_lead=i == 0)
    case.status = CaseStatus.DISPATCHED
    settle_deadlines(step)


HANDLERS: dict[Action, Callable[[Step], dict[str, Any]]] = {
    Action.DISPATCH: _dispatch,
    Action.SIGN_FOR: _sign_for,
    Action.RETURN: _return,
    Action.DECIDE_RETURN: _decide_return,
    Action.REQUEST_EXTENSION: _request_extension,
    Action.DECIDE_EXTENSION: _decide_extension,
    Action.FEED_BACK: _feed_back,
    Action.VERIFY_FAIL: _verify_fail,
    Action.RELEASE: _release,
    Action.HANG_UP: _hang_up,
    Action.RESUME: _resume,
    Action.REOPEN: _reopen,
    Action.URGE: _urge,
    Action.CANCEL: _cancel,
}
