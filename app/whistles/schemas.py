"""Whistle schemas: blowing one, reporting in, and the record of who came."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.coords import PointIn
from app.core.moments import LocalMoment
from app.routing.schemas import CategoryCode, UnitBrief
from app.territory.schemas import Code, PlaceRef

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class WhistleCreate(PointIn):
    """A road chief blows the whistle (吹哨) at a place (the point) on one of their segments."""

    model_config = ConfigDict(extra="forbid")

    segment_code: Code = Field(examples=["RS-0001"])
    category_code: CategoryCode = Field(examples=["roads.waterlogging"])
    description: Note = Field(examples=["文博路与兴华街交叉口积水严重，需排水、交警、城管到场"])
    unit_codes: list[Code] = Field(
        min_length=1,
        max_length=20,
        description="The departments summoned (部门).",
        examples=[["urban-management", "traffic-police-5"]],
    )
    report_in_minutes: int | None = Field(
        default=None,
        ge=5,
        le=24 * 60,
        description="Time to report in on site, in wall-clock minutes at any hour (a "
        "summons to the site, not a working term: never moved onto working time); the "
        "deployment's default when absent.",
    )
    case_number: str | None = Field(
        default=None,
        max_length=32,
        description="Join this open case: the report-ins go into its history.",
    )
    open_case: bool = Field(
        default=False,
        description="Open a case dispatched straight to the summoned units (the first leads).",
    )

    @model_validator(mode="after")
    def _one_case(self) -> WhistleCreate:
        if self.open_case and self.case_number:
            raise ValueError("open_case 与 case_number 只能选一个")
        return self


class ReportInCreate(PointIn):
    """A summoned department reports in on site (报到), with where it stands (the point)."""

    model_config = ConfigDict(extra="forbid")

    unit_code: Code | None = Field(
        default=None, description="Which unit reports in; defaults to the caller's own."
    )
    accuracy_m: float | None = Field(default=None, ge=0, le=500)
    note: Note | None = None


class SummonsStatus(StrEnum):
    """待报到 / 按时报到 / 超时报到 / 未报到."""

    WAITING = "waiting"
    ON_TIME = "on_time"
    LATE = "late"
    MISSED = "missed"


class PersonRef(BaseModel):
    user_id: int
    display_name: str


class SummonsOut(BaseModel):
    unit: UnitBrief
    status: SummonsStatus
    reported_at: LocalMoment | None
    reported_by: PersonRef | None
    minutes_to_report: float | None = Field(description="From the whistle to the report-in.")
    distance_m: float | None = Field(description="Where it reported in, from the place.")
    note: str | None


class WhistleOut(BaseModel):
    id: int
    blown_at: LocalMoment
    blown_by: PersonRef
    segment_code: str
    segment_name: str
    street: PlaceRef | None
    lon: float = Field(description="WGS 84.")
    lat: float
    category_code: str
    category_name: str
    description: str
    report_in_due_at: LocalMoment
    case_number: str | None = Field(description="The case it opened or joined.")
    summonses: list[SummonsOut]
    counts: dict[SummonsStatus, int] = Field(description="Summoned units per status.")
