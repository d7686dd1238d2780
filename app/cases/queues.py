"""Work queues: what each actor must do next (待办).

- department staff: their unit's open tasks, soonest deadline first;
- the command centre: cases awaiting registration or dispatch, oldest first;
- road chiefs and supervisors: cases awaiting their verification, oldest first.

Pages are cursors over a stable sort key that ends in the row id, so a page never
repeats or skips a row when others are written meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from geoalchemy2.shape import to_shape
from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.orm import Session

from app.access.rules import Forbidden, Permission, Principal
from app.calendar.service import working_calendar
from app.cases.models import (
    HANDLING_STATUSES,
    OPEN_TASK_STATUSES,
    Case,
    CaseStatus,
    CaseTask,
    TaskStatus,
)
from app.cases.relations import may_dispatch, verifiable_cases
from app.cases.schemas import CaseSummary, DispatchQueueItem, TaskQueueItem
from app.cases.workflow import staff_actions
from app.core.database import utcnow
from app.core.pagination import Keyset
from app.routing.schemas import UnitBrief
from app.routing.service import proposals
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings

DispatchStage = Literal["register", "dispatch", "returns", "extensions"]

#: Tasks soonest deadline first; cases oldest first.
BY_DEADLINE = Keyset(CaseTask.handle_due_at, CaseTask.id)
BY_CASE = Keyset(Case.id)


def unit_tasks(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    unit_code: str | None,
    status: TaskStatus | None,
    category: str | None,
    street: str | None,
    overdue: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[TaskQueueItem], str | None]:
    """A unit's open tasks by handling deadline (department staff: their own unit)."""
    principal.require(Permission.CASES_READ)
    code = unit_code or principal.unit_code
    if code is None:
        raise Forbidden("请指明单位（unit）")
    principal.require_unit(code)
    now = utcnow()
    # The unit itself, not its id: the answer names it (one read, kept in hand).
    held_unit = session.scalar(select(Unit).where(Unit.code == code))
    unit_id = held_unit.id if held_unit is not None else None
    query = (
        select(CaseTask, Case)
        .join(Case, CaseTask.case_id == Case.id)
        .where(
            CaseTask.unit_id == unit_id,
            # Literal values: the planner must see the partial index's own predicate.
            CaseTask.status.in_(
                bindparam(
                    "task_statuses",
                    [status.value] if status else sorted(s.value for s in OPEN_TASK_STATUSES),
                    expanding=True,
                    literal_execute=True,
                )
            ),
            # Every dispatched task has a deadline (categories always carry time limits).
            CaseTask.handle_due_at.isnot(None),
            # Only cases being handled: not hung up (paused), not back at the centre.
            Case.status.in_(sorted(HANDLING_STATUSES)),
        )
    )
    if category is not None:
        query = query.where(Case.category_code == category)
    if street is not None:
        query = query.where(Case.street_code == street)
    if overdue is not None:
        query = query.where(
            CaseTask.handle_due_at < now if overdue else CaseTask.handle_due_at >= now
        )
    rows, next_cursor = BY_DEADLINE.rows(session, query, limit=limit, cursor=cursor)
    calendar = working_calendar(session, settings)
    unit = held_unit if rows else None
    items = []
    for task, case in rows:
        assert unit is not None
        deadline = task.handle_due_at
        assert deadline is not None  # the query's filter: every dispatched task has one
        place = to_shape(case.geom)
        items.append(
            TaskQueueItem(
                case_number=case.number or "",
                case_version=case.version,
                case_status=case.status,
                category_code=case.category_code,
                urgency=case.urgency,
                description=case.description,
                lon=place.x,
                lat=place.y,
                street_code=case.street_code,
                community_code=case.community_code,
                grid_cell_code=case.grid_cell_code,
                segment_code=case.segment_code,
                unit=UnitBrief.model_validate(unit),
                is_lead=task.is_lead,
                task_status=task.status,
                sign_for_due_at=task.sign_for_due_at,
                handle_due_at=deadline,
                overdue=deadline < now,
                warned=task.handle_warn_at is not None and task.handle_warn_at <= now,
                remaining_working_hours=round(calendar.working_hours_between(now, deadline), 2),
                extension_requested_until=task.extension_requested_until,
                actions=staff_actions(case.status, task.status),
            )
        )
    return items, next_cursor


def _summaries(cases: list[Case]) -> list[CaseSummary]:
    return [CaseSummary.model_validate(c) for c in cases]


def dispatch_queue(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    stage: DispatchStage | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DispatchQueueItem], str | None]:
    """The command centre's queue, oldest first: cases to register or dispatch, and units'
    returns (退回) and extension requests (延期) awaiting a decision."""
    principal.require(Permission.CASES_READ)
    if not may_dispatch(principal):
        raise Forbidden("只有指挥中心可以查看受理派遣队列")
    stages = [stage] if stage else ["register", "dispatch", "returns", "extensions"]
    awaiting = {
        "register": Case.status == CaseStatus.PENDING_REGISTRATION,
        "dispatch": Case.status == CaseStatus.REGISTERED,
        "returns": exists().where(
            CaseTask.case_id == Case.id, CaseTask.status == TaskStatus.RETURN_REQUESTED
        ),
        "extensions": exists().where(
            CaseTask.case_id == Case.id,
            CaseTask.extension_requested_until.isnot(None),
            CaseTask.status.in_(sorted(OPEN_TASK_STATUSES)),
        ),
    }
    query = select(Case).where(
        or_(*(awaiting[s] for s in stages)), principal.path_filter(Case.jurisdiction_path)
    )
    cases, next_cursor = BY_CASE.scalars(session, query, limit=limit, cursor=cursor)
    # The routing's proposal with each, so the centre can accept it in one step.
    routed = proposals(
        session, settings, {c.routing_decision_id for c in cases if c.routing_decision_id}
    )
    items = [
        DispatchQueueItem(
            **dict(summary),
            routing=routed.get(case.routing_decision_id) if case.routing_decision_id else None,
        )
        for case, summary in zip(cases, _summaries(cases), strict=True)
    ]
    return items, next_cursor


def verification_queue(
    session: Session, settings: Settings, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[CaseSummary], str | None]:
    """Cases awaiting verification that the caller may verify (`verifiable_cases`)."""
    principal.require(Permission.CASES_READ)
    query = select(Case).where(
        Case.status == CaseStatus.AWAITING_VERIFICATION, verifiable_cases(principal)
    )
    cases, next_cursor = BY_CASE.scalars(session, query, limit=limit, cursor=cursor)
    return _summaries(cases), next_cursor
