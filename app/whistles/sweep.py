"""Missed report-ins (未报到): the part of the deadline sweep that belongs to whistles.

Registered with the case sweep (`app.cases.sweep.also_sweep`, in `app.wiring`): a summoned
unit that has not reported in by the whistle's deadline is marked once, and the case the
whistle opened or joined records the miss against it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseEventKind
from app.cases.sweep import SweepRun, claim, record_swept
from app.whistles.models import Whistle, WhistleCase, WhistleSummons

if TYPE_CHECKING:
    from app.settings import Settings


def sweep_missed_report_ins(
    session: Session, settings: Settings, run: SweepRun, now: datetime
) -> None:
    missed = session.execute(
        select(WhistleSummons.id, Whistle.id, WhistleCase.case_id, WhistleSummons.unit_id)
        .join(Whistle, WhistleSummons.whistle_id == Whistle.id)
        .join(WhistleCase, WhistleCase.whistle_id == Whistle.id)
        .where(
            Whistle.report_in_due_at <= now,
            WhistleSummons.reported_at.is_(None),
            WhistleSummons.missed_at.is_(None),
        )
    ).all()
    for summons_id, whistle_id, case_id, unit_id in missed:
        if claim(
            session,
            update(WhistleSummons)
            .where(
                WhistleSummons.id == summons_id,
                WhistleSummons.missed_at.is_(None),
                WhistleSummons.reported_at.is_(None),  # not reported in since it was read
            )
            .values(missed_at=now),
        ):
            case = session.get(Case, case_id)
            assert case is not None
            record_swept(session, settings, run, case, CaseEventKind.WHISTLE_MISSED, now,
                         whistle_id=whistle_id, unit_id=unit_id)  # fmt: skip
        session.commit()
