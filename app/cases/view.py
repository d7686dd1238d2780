"""The case as read (案件详情): who may see it, and the answer a read or a step gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.calendar.service import WorkingCalendar, working_calendar
from app.cases.models import OPEN_TASK_STATUSES, Case, CaseTask
from app.cases.relations import may_dispatch, may_see_case
from app.cases.schemas import CaseOut, CasePlaceTimes, TaskOut
from app.cases.service import history
from app.core.database import utcnow
from app.core.errors import NotFound
from app.routing.schemas import RoutingProposal, UnitBrief
from app.routing.service import proposals
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings


_CASE_BY_NUMBER = select(Case).where(Case.number == bindparam("number"))


def find_case(session: Session, principal: Principal, number: str) -> Case:
    """The case, if the caller may see it (in scope, or staff of a unit with a task)."""
    case = session.scalar(_CASE_BY_NUMBER, {"number": number})
    if case is None or not may_see_case(session, principal, case):
        raise NotFound("案件不存在")
    return case


def case_out(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    calendar: WorkingCalendar | None = None,
    held: tuple[list[CaseTask], dict[int, Unit]] | None = None,
) -> CaseOut:
    """The case as answered; `held`: all its tasks and their units by id, as a step holds
    them (not read again)."""
    calendar = calendar or working_calendar(session, settings)
    now = utcnow()
    rows: Sequence[tuple[CaseTask, Unit]]
    if held is None:
        rows = session.execute(
            select(CaseTask, Unit)
            .join(Unit, CaseTask.unit_id == Unit.id)
            .where(CaseTask.case_id == case.id)
            .order_by(CaseTask.is_lead.desc(), CaseTask.id)
        ).all()
    else:
        held_tasks, units = held
        ordered = sorted(held_tasks, key=lambda t: (not t.is_lead, t.id))
        rows = [(task, units[task.unit_id]) for task in ordered]

    tasks = [
        TaskOut(
            unit=UnitBrief.model_validate(unit),
            is_lead=task.is_lead,
            status=task.status,
            sign_for_due_at=task.sign_for_due_at,
            handle_due_at=task.handle_due_at,
            remaining_working_hours=round(
                calendar.working_hours_between(now, task.handle_due_at), 2
            )
            if task.handle_due_at and task.status in OPEN_TASK_STATUSES
            else None,
            signed_at=task.signed_at,
            done_at=task.done_at,
            overdue=bool(
                task.handle_due_at
                and task.status in OPEN_TASK_STATUSES
                and task.handle_due_at < now
            ),
            escalation_level=task.escalation_level,
            extension_requested_until=task.extension_requested_until,
            extension_count=task.extension_count,
            returns_refused=task.returns_refused,
        )
        for task, unit in rows
    ]
    return CaseOut(
        **dict(CasePlaceTimes.model_validate(case)),
        number=case.number or "",
        version=case.version,
        status=case.status,
        source=case.source,
        category_code=case.category_code,
        urgency=case.urgency,
        description=case.description,
        stage=case.stage,
        stage_due_at=case.stage_due_at,
        report_count=case.report_count,
        rework_count=case.rework_count,
        urge_count=case.urge_count,
        reopen_count=case.reopen_count,
        hung_up_at=case.hung_up_at,
        fixed_on_spot=case.fixed_on_spot,
        routing=routing_proposal(session, settings, principal, case),
        tasks=tasks,
        history=history(session, case.id),
    )


def routing_proposal(
    session: Session, settings: Settings, principal: Principal, case: Case
) -> RoutingProposal | None:
    """The case's routing decision, for whoever may dispatch it (and sees the case)."""
    if case.routing_decision_id is None or not may_dispatch(principal):
        return None
    return proposals(session, settings, [case.routing_decision_id])[case.routing_decision_id]


def get_case(session: Session, settings: Settings, principal: Principal, number: str) -> CaseOut:
    principal.require(Permission.CASES_READ)
    return case_out(session, settings, principal, find_case(session, principal, number))
