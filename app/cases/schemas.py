"""Case schemas shared by intake and, later, the workflow."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.cases.models import CaseEventKind, CaseStatus
from app.routing.models import Urgency


class CaseEventOut(BaseModel):
    occurred_at: datetime
    kind: CaseEventKind
    actor: str | None = Field(description="Display name of who acted.")
    actor_role: str | None
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    note: str | None
    photo_ids: list[int]
    lon: float | None
    lat: float | None


class NearbyCase(BaseModel):
    """An open case of the same category near a point: maybe the same problem."""

    number: str
    status: CaseStatus
    category_code: str
    urgency: Urgency
    description: str
    reported_at: datetime
    report_count: int
    distance_m: float
    thumbnail_url: str | None
