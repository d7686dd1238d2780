"""Patrol schemas."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from geojson_pydantic import Feature, FeatureCollection
from geojson_pydantic.geometries import LineString, MultiLineString
from pydantic import BaseModel, ConfigDict, Field

from app.core.coords import PointIn
from app.core.inputs import Moment
from app.core.moments import LocalMoment
from app.patrols.models import CheckInPurpose, FixFlag, OutOfWindow, PatrolStatus


class PatrolStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: Moment | None = Field(
        default=None, description="When the walk began on the phone (offline start); now if absent."
    )


class FixIn(PointIn):
    """One GPS fix of the walk (the system it came in is kept with it)."""

    model_config = ConfigDict(extra="forbid")

    recorded_at: Moment = Field(description="The fix's time on the phone (+08:00).")
    accuracy_m: float | None = Field(default=None, ge=0)


#: The most fixes one batch may carry.
MAX_FIXES_PER_BATCH = 500


class FixBatch(BaseModel):
    """Fixes in any order; a resent batch (or fix) is taken once."""

    model_config = ConfigDict(extra="forbid")

    fixes: list[FixIn] = Field(min_length=1, max_length=MAX_FIXES_PER_BATCH)


class FixBatchResult(BaseModel):
    accepted: int = Field(description="New fixes stored.")
    duplicates: int = Field(description="Fixes already stored (same moment): ignored.")
    flagged: dict[FixFlag, int] = Field(description="New fixes left out of the track, by reason.")
    refused: dict[OutOfWindow, int] = Field(
        description="Fixes recorded outside the patrol's time (or ahead of the server's "
        "clock): not stored, by reason. The phone may drop them."
    )


class SegmentCoverageOut(BaseModel):
    segment_code: str
    segment_name: str
    length_m: float
    covered_m: float
    covered_share: float
    complete: bool


class PatrolSummary(BaseModel):
    """A patrol as my list shows it: enough to find it again and carry on."""

    model_config = ConfigDict(from_attributes=True)  # a Patrol row as it is

    id: int
    status: PatrolStatus
    started_at: LocalMoment
    ended_at: LocalMoment | None
    duration_s: float | None = Field(description="From start to end, pauses left out.")
    distance_m: float | None = Field(description="Length of the cleaned track.")
    fix_count: int
    remeasure_pending: bool = Field(
        description="Late fixes arrived after the end: the measures above are taken again "
        "shortly (by the service's background jobs)."
    )


class PatrolOut(PatrolSummary):
    user_id: int
    kept_fix_count: int | None
    report_ids: list[int] = Field(description="Reports made during the patrol.")
    flagged: dict[FixFlag, int]
    segments: list[SegmentCoverageOut]


class SegmentPatrolOut(BaseModel):
    """One patrol of a segment, for the segment's patrol history."""

    patrol_id: int
    user_id: int
    display_name: str
    started_at: LocalMoment
    ended_at: LocalMoment | None
    covered_share: float
    complete: bool


class MissedPeriod(BaseModel):
    start: date
    end: date
    patrolled_days: int = Field(description="Days in the period with a complete patrol.")
    required_days: int


class DutyCompliance(BaseModel):
    """One chief's duty over the period asked (巡查履职): on one segment (scope `each`), or
    on their segments as a whole (scope `any`: no segment named)."""

    username: str
    display_name: str
    chief_level: int
    scope: Literal["each", "any"] = Field(
        description="each: this segment on its own; any: a day counts when any of the "
        "chief's segments was patrolled completely."
    )
    segment_code: str | None
    segment_name: str | None
    street_code: str = Field(description="The segment's street (any: where most lie).")
    duty: str = Field(description='"daily" or "weekly:N" (days a week).')
    periods: int = Field(
        description="Working days (daily) or weeks (weekly) judged: those that have ended, "
        "and the running one once it is met."
    )
    met: int
    missed: list[MissedPeriod]
    rate: float | None = Field(description="met / periods; null while none is judged.")


class StreetCompliance(BaseModel):
    street_code: str
    duties: int
    periods: int
    met: int
    rate: float | None


class ComplianceOut(BaseModel):
    date_from: date
    date_to: date
    duties: list[DutyCompliance]
    streets: list[StreetCompliance]


class CheckInIn(PointIn):
    """Checking in at a workstation, standing near it."""

    model_config = ConfigDict(extra="forbid")

    purpose: CheckInPurpose = CheckInPurpose.MEETING
    note: str | None = Field(default=None, max_length=1000)


class CheckOutIn(PointIn):
    """Checking out of a workstation, standing near it."""

    model_config = ConfigDict(extra="forbid")


class CheckInOut(BaseModel):
    id: int
    workstation_code: str
    user_id: int
    display_name: str
    purpose: CheckInPurpose
    note: str | None
    checked_in_at: LocalMoment
    in_distance_m: float
    checked_out_at: LocalMoment | None
    out_distance_m: float | None
    minutes: float | None = Field(description="From check-in to check-out.")


# --- maps (GeoJSON) ------------------------------------------------------------------------


class CoverageProperties(BaseModel):
    segment_code: str
    name: str
    grade: str = Field(description="The segment's road grade.")
    street_code: str
    complete_patrols: int = Field(description="Complete patrols of the segment in the period.")
    best_share: float = Field(description="The largest share of it one patrol covered (0–1).")
    coverage: Literal["complete", "partial", "none"]


class CoverageFeature(Feature[LineString, CoverageProperties]):
    """One road segment of the coverage map."""


class CoverageMap(FeatureCollection[CoverageFeature]):
    """Road segments coloured by patrol coverage (GeoJSON FeatureCollection)."""


class TrackProperties(BaseModel):
    kind: Literal["track"] = "track"
    patrol_id: int
    distance_m: float | None = Field(description="The cleaned track's length in metres.")


class CoveredProperties(BaseModel):
    kind: Literal["covered"] = "covered"
    segment_code: str
    covered_share: float = Field(description="Share of the segment covered (0–1).")
    complete: bool = Field(description="The share reached a complete patrol's.")


class PatrolMapFeature(
    Feature[
        LineString | MultiLineString,
        Annotated[TrackProperties | CoveredProperties, Field(discriminator="kind")],
    ]
):
    """The patrol's track (`kind: track`) or the part of one segment it covered."""


class PatrolMap(FeatureCollection[PatrolMapFeature]):
    """A patrol's track and covered parts of segments (GeoJSON FeatureCollection)."""
