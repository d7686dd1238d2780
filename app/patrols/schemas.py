"""Patrol schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.coords import CoordinateSystem
from app.core.inputs import Moment
from app.patrols.models import CheckInPurpose, FixFlag, PatrolStatus


class PatrolStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: Moment | None = Field(
        default=None, description="When the walk began on the phone (offline start); now if absent."
    )


class FixIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recorded_at: Moment = Field(description="The fix's time on the phone (+08:00).")
    lon: float
    lat: float
    accuracy_m: float | None = Field(default=None, ge=0)
    coordinate_system: CoordinateSystem = CoordinateSystem.WGS84


class FixBatch(BaseModel):
    """Fixes in any order; a resent batch (or fix) is taken once."""

    model_config = ConfigDict(extra="forbid")

    fixes: list[FixIn] = Field(min_length=1, max_length=500)


class FixBatchResult(BaseModel):
    accepted: int = Field(description="New fixes stored.")
    duplicates: int = Field(description="Fixes already stored (same moment): ignored.")
    flagged: dict[FixFlag, int] = Field(description="New fixes left out of the track, by reason.")


class SegmentCoverageOut(BaseModel):
    segment_code: str
    segment_name: str
    length_m: float
    covered_m: float
    covered_share: float
    complete: bool


class PatrolOut(BaseModel):
    id: int
    user_id: int
    status: PatrolStatus
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None = Field(description="From start to end, pauses left out.")
    distance_m: float | None = Field(description="Length of the cleaned track.")
    fix_count: int
    kept_fix_count: int | None
    report_ids: list[int] = Field(description="Reports made during the patrol.")
    flagged: dict[FixFlag, int]
    segments: list[SegmentCoverageOut]


class SegmentPatrolOut(BaseModel):
    """One patrol of a segment, for the segment's patrol history."""

    patrol_id: int
    user_id: int
    display_name: str
    started_at: datetime
    ended_at: datetime | None
    covered_share: float
    complete: bool


FeatureCollection = dict[str, Any]


class MissedPeriod(BaseModel):
    start: date
    end: date
    patrolled_days: int = Field(description="Days in the period with a complete patrol.")
    required_days: int


class DutyCompliance(BaseModel):
    """One chief's duty on one segment over the period asked (巡查履职)."""

    username: str
    display_name: str
    chief_level: int
    segment_code: str
    segment_name: str
    street_code: str
    duty: str = Field(description='"daily" or "weekly:N" (days a week).')
    periods: int = Field(description="Working days (daily) or weeks (weekly) in the range.")
    met: int
    missed: list[MissedPeriod]
    rate: float = Field(description="met / periods (1.0 with no period).")


class StreetCompliance(BaseModel):
    street_code: str
    duties: int
    periods: int
    met: int
    rate: float


class ComplianceOut(BaseModel):
    date_from: date
    date_to: date
    duties: list[DutyCompliance]
    streets: list[StreetCompliance]


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float
    lat: float
    coordinate_system: CoordinateSystem = CoordinateSystem.WGS84
    purpose: CheckInPurpose = CheckInPurpose.MEETING
    note: str | None = Field(default=None, max_length=1000)


class CheckOutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float
    lat: float
    coordinate_system: CoordinateSystem = CoordinateSystem.WGS84


class CheckInOut(BaseModel):
    id: int
    workstation_code: str
    user_id: int
    display_name: str
    purpose: CheckInPurpose
    note: str | None
    checked_in_at: datetime
    in_distance_m: float
    checked_out_at: datetime | None
    out_distance_m: float | None
    minutes: float | None = Field(description="From check-in to check-out.")
