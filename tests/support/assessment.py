"""Assessment steps: an inspection's body and its deductions (a third-party assessor's
walk), and moving cases back into last month as if it had run its course."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.facts import rebuild
from app.cases.models import Case, CaseEvent, CaseTask
from app.core.database import utcnow
from app.reports.models import Report
from app.settings import Settings
from tests.support.cases import Loop
from tests.support.places import Spot


def inspection(spot: Spot, *deductions: dict[str, Any], **more: Any) -> dict[str, Any]:
    ended = utcnow() - timedelta(minutes=5)
    return {
        "segment_code": spot.segment_code,
        "started_at": (ended - timedelta(minutes=40)).isoformat(),
        "ended_at": ended.isoformat(),
        "track": [[spot.lon - 0.0005, spot.lat], [spot.lon + 0.0005, spot.lat]],
        "deductions": list(deductions),
        **more,
    }


def finding(spot: Spot, item: str, photo: int, **more: Any) -> dict[str, Any]:
    return {"item_code": item, "lon": spot.lon, "lat": spot.lat, "photo_ids": [photo], **more}


def move_to_last_month(session: Session, settings: Settings, loops: Iterable[Loop]) -> str:
    """Move the cases (reports, tasks, history) back to the 10th of last month, as if the
    month had run its course; returns the month's label."""
    now = utcnow().astimezone(settings.zone)
    target = (now.replace(day=1) - timedelta(days=1)).replace(day=10)
    shift = now - target
    ids = select(Case.id).where(Case.number.in_([one.number for one in loops]))
    for model, column in ((Case, "reported_at"), (CaseEvent, "occurred_at"),
                          (CaseTask, "assigned_at"), (Report, "received_at")):  # fmt: skip
        key = Case.id if model is Case else model.case_id  # type: ignore[attr-defined]
        for row in session.scalars(select(model).where(key.in_(ids))):
            setattr(row, column, getattr(row, column) - shift)
    session.flush()
    rebuild(session)  # history rewritten behind the service's back, as an import would
    return f"{target:%Y-%m}"
