"""Task deadlines (处置时限) and the alarms the sweep watches for.

A task has a sign-for and a handling deadline, counted in working hours from dispatch, and
a warning point at `deadline_warning_fraction` of its handling time (临期预警). Once
overdue it escalates one road-chief level up at the deadline, and one more each
`escalation_step_hours` working hours after (超期升级). `next_alarm_at` is the earliest of
these still to come, so the sweep reads only tasks whose moment has come (an index).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.calendar.service import WorkingCalendar
from app.cases.models import HANDLING_STATUSES, OPEN_TASK_STATUSES, Case, CaseTask, TaskStatus

if TYPE_CHECKING:
    from app.settings import Settings

#: Escalation goes up from the level-3 chief (a community cadre) to level 2, then level 1
#: (the head of the street office): the level each escalation step reaches.
ESCALATION_CHIEF_LEVELS = (2, 1)


def set_handle_deadline(
    task: CaseTask,
    calendar: WorkingCalendar,
    settings: Settings,
    start: datetime,
    due: datetime,
) -> None:
    """Give the task a new handling deadline (dispatch, rework, reopen, extension): its
    warning point moves with it and its overdue marks are cleared for the new term."""
    task.handle_due_at = due
    total = calendar.working_hours_between(start, due)
    task.handle_warn_at = (
        calendar.add_working_hours(start, total * settings.deadline_warning_fraction)
        if total > 0
        else due
    )
    task.warned_at = task.overdue_at = None
    task.escalation_level = 0


def escalation_due_at(
    task: CaseTask, calendar: WorkingCalendar, settings: Settings
) -> datetime | None:
    """When the overdue task escalates one level further (None: at the top, or not due)."""
    if task.handle_due_at is None or task.overdue_at is None:
        return None
    if task.escalation_level >= len(ESCALATION_CHIEF_LEVELS):
        return None
    return calendar.add_working_hours(
        task.handle_due_at, settings.escalation_step_hours * task.escalation_level
    )


def next_alarm(
    task: CaseTask, case: Case, calendar: WorkingCalendar, settings: Settings
) -> datetime | None:
    """The next moment the sweep must look at the task; None while nothing can fire
    (a finished, returned or paused task, or a case that is hung up or finished)."""
    if task.status not in OPEN_TASK_STATUSES or case.status not in HANDLING_STATUSES:
        return None
    moments = []
    if (
        task.status is TaskStatus.PENDING
        and task.sign_for_overdue_at is None
        and task.sign_for_due_at is not None
    ):
        moments.append(task.sign_for_due_at)
    if task.warned_at is None and task.overdue_at is None and task.handle_warn_at is not None:
        moments.append(task.handle_warn_at)
    if task.overdue_at is None and task.handle_due_at is not None:
        moments.append(task.handle_due_at)
    escalation = escalation_due_at(task, calendar, settings)
    if escalation is not None:
        moments.append(escalation)
    return min(moments, default=None)


def shift_for_pause(
    value: datetime | None, calendar: WorkingCalendar, paused_at: datetime, now: datetime
) -> datetime | None:
    """A deadline after a pause (挂账) from `paused_at` to `now`: the working hours that were
    left at the pause are left again now. One already past at the pause moves by the pause
    itself, so a task overdue by a day is overdue by a day after it (and does not climb
    the escalation ladder for time it was set aside)."""
    if value is None:
        return None
    if value <= paused_at:
        return value + (now - paused_at)
    return calendar.add_working_hours(now, calendar.working_hours_between(paused_at, value))
