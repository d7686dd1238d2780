"""The deadline sweep (超期扫描): warnings, overdue marks, escalation, and what other
domains register to be swept with it (`also_sweep`: whistles' missed report-ins).

Runs inside the service every `background_interval_seconds`, and as
`roadchief workflow sweep` for cron. It reads only what is due: tasks by `next_alarm_at`
(an index), cases awaiting verification past their deadline, whistles past their
report-in time. Each item is claimed with a conditional UPDATE before anything is written,
so two sweeps at once (two workers, a cron job beside the service) never record a thing
twice, and a second run records nothing more. The sweep does not change a case's version:
it takes no step in the loop, so it must not make a person's next step fail as stale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.calendar.service import WorkingCalendar, working_calendar
from app.cases.deadlines import ESCALATION_CHIEF_LEVELS, escalation_due_at, next_alarm
from app.cases.models import Case, CaseEventKind, CaseStatus, CaseTask, TaskStatus
from app.cases.service import record_event
from app.core.database import rows_changed, utcnow
from app.core.moments import local_isoformat

if TYPE_CHECKING:
    from app.settings import Settings

SYSTEM_ROLE = "system"


@dataclass
class SweepRun:
    """What one sweep recorded, by event kind."""

    recorded: dict[str, int] = field(default_factory=dict)

    def count(self, kind: CaseEventKind) -> None:
        self.recorded[kind.value] = self.recorded.get(kind.value, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.recorded.values())


def record_swept(
    session: Session,
    settings: Settings,
    run: SweepRun,
    case: Case,
    kind: CaseEventKind,
    now: datetime,
    **detail: Any,
) -> None:
    """Record what the sweep found due on `case` (by the system, not a person)."""
    record_event(session, settings, case, kind, occurred_at=now, actor_role=SYSTEM_ROLE,
                 detail=detail)  # fmt: skip
    run.count(kind)


def claim(session: Session, statement: Any) -> bool:
    """Run a conditional UPDATE; True if this sweep won the row (another may have)."""
    return bool(
        rows_changed(session.execute(statement.execution_options(synchronize_session=False))) == 1
    )


def _fire_task_alarms(
    session: Session,
    settings: Settings,
    calendar: WorkingCalendar,
    run: SweepRun,
    case: Case,
    task: CaseTask,
    now: datetime,
) -> None:
    def due(value: datetime | None) -> str | None:
        return local_isoformat(value) if value else None

    unit = {"unit_id": task.unit_id}
    if (
        task.status is TaskStatus.PENDING
        and task.sign_for_overdue_at is None
        and task.sign_for_due_at is not None
        and task.sign_for_due_at <= now
    ):
        task.sign_for_overdue_at = now
        record_swept(session, settings, run, case, CaseEventKind.SIGN_FOR_OVERDUE, now,
                **unit, due_at=due(task.sign_for_due_at))  # fmt: skip
    if task.overdue_at is None and task.handle_due_at is not None and task.handle_due_at <= now:
        # Overdue: the first escalation comes with it; a warning is moot now.
        task.overdue_at, task.warned_at = now, task.warned_at or now
        task.escalation_level = 1
        record_swept(session, settings, run, case, CaseEventKind.OVERDUE, now, **unit,
                due_at=due(task.handle_due_at), escalation_level=1,
                chief_level=ESCALATION_CHIEF_LEVELS[0])  # fmt: skip
    elif task.warned_at is None and task.handle_warn_at is not None and task.handle_warn_at <= now:
        task.warned_at = now
        left = calendar.working_hours_between(now, task.handle_due_at) if task.handle_due_at else 0
        record_swept(session, settings, run, case, CaseEventKind.DEADLINE_WARNING, now, **unit,
                due_at=due(task.handle_due_at), remaining_working_hours=round(left, 2))  # fmt: skip
    while (moment := escalation_due_at(task, calendar, settings)) is not None and moment <= now:
        task.escalation_level += 1
        record_swept(session, settings, run, case, CaseEventKind.ESCALATED, now, **unit,
                due_at=due(task.handle_due_at), escalation_level=task.escalation_level,
                chief_level=ESCALATION_CHIEF_LEVELS[task.escalation_level - 1])  # fmt: skip


def _sweep_tasks(
    session: Session,
    settings: Settings,
    calendar: WorkingCalendar,
    run: SweepRun,
    now: datetime,
    batch: int,
) -> None:
    while True:
        due = session.execute(
            select(CaseTask.id, CaseTask.next_alarm_at)
            .where(CaseTask.next_alarm_at <= now)
            .order_by(CaseTask.next_alarm_at, CaseTask.id)
            .limit(batch)
            # PostgreSQL: rows another server's sweep holds are left to it, not waited for
            # (SQLite has one writer and no FOR UPDATE; the claim below decides there).
            .with_for_update(skip_locked=True, of=CaseTask)
        ).all()
        claimed_any = False
        for task_id, seen in due:
            if not claim(
                session,
                update(CaseTask)
                .where(CaseTask.id == task_id, CaseTask.next_alarm_at == seen)
                .values(next_alarm_at=None),
            ):
                continue  # another sweep has it
            claimed_any = True
            task = session.get(CaseTask, task_id, populate_existing=True)
            assert task is not None
            case = session.get(Case, task.case_id)
            assert case is not None
            _fire_task_alarms(session, settings, calendar, run, case, task, now)
            task.next_alarm_at = next_alarm(task, case, calendar, settings)
        session.commit()
        if len(due) < batch or not claimed_any:
            return


def _sweep_verifications(
    session: Session, settings: Settings, run: SweepRun, now: datetime
) -> None:
    overdue = session.execute(
        select(Case.id).where(
            Case.status == CaseStatus.AWAITING_VERIFICATION,
            Case.verify_due_at <= now,
            Case.verify_overdue_at.is_(None),
        )
    ).scalars()
    for case_id in list(overdue):
        # Core UPDATE: marks without raising the version (no step was taken).
        if claim(
            session,
            update(Case)
            .where(
                Case.id == case_id,
                Case.verify_overdue_at.is_(None),
                # Still so: not verified, nor given a new term, since it was read.
                Case.status == CaseStatus.AWAITING_VERIFICATION,
                Case.verify_due_at <= now,
            )
            .values(verify_overdue_at=now),
        ):
            case = session.get(Case, case_id, populate_existing=True)
            assert case is not None
            due = case.verify_due_at
            due_at = local_isoformat(due) if due else None
            record_swept(session, settings, run, case, CaseEventKind.VERIFICATION_OVERDUE, now,
                    due_at=due_at)  # fmt: skip
        session.commit()


#: More that falls due, swept after the cases' own deadlines: `app.wiring` registers the
#: whistles' missed report-ins here (they know cases; cases know nothing of whistles).
Sweeper = Callable[[Session, "Settings", SweepRun, datetime], None]
_ALSO_SWEPT: list[Sweeper] = []


def also_sweep(sweeper: Sweeper) -> None:
    """Run `sweeper` in each sweep, after the deadlines (once, however often registered)."""
    if sweeper not in _ALSO_SWEPT:
        _ALSO_SWEPT.append(sweeper)


def sweep(
    session: Session, settings: Settings, *, now: datetime | None = None, batch: int = 500
) -> SweepRun:
    """Record every warning, overdue mark, escalation and missed report-in now due."""
    now = now or utcnow()
    run = SweepRun()
    calendar = working_calendar(session, settings)
    _sweep_tasks(session, settings, calendar, run, now, batch)
    _sweep_verifications(session, settings, run, now)
    for sweeper in _ALSO_SWEPT:
        sweeper(session, settings, run, now)
    return run
