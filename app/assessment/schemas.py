"""Assessment schemas: KPI rows of a period, and the definitions behind them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from geojson_pydantic import Feature, FeatureCollection
from geojson_pydantic.geometries import LineString, Polygon
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.cases.models import CaseSource, CaseStatus
from app.cases.schemas import HandleDueAt, Stage, StageDueAt
from app.core.coords import CoordinateSystem, CoordinateSystemFlag, PointIn
from app.core.inputs import DatabaseId, Moment
from app.core.moments import LocalMoment
from app.media.schemas import PhotoOut
from app.routing.models import Urgency
from app.routing.schemas import UnitBrief
from app.territory.models import ExcellenceGrade

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class KpiDefinition(BaseModel):
    code: str = Field(examples=["on_time_handling"])
    name: str = Field(examples=["按期处置率"])
    formula: str
    better: str = Field(description="`higher`, `lower` (a rate), or `count`.")
    weight: float | None = Field(description="In the composite score (综合指标值), if a rate.")


class KpiDefinitions(BaseModel):
    kpis: list[KpiDefinition]
    handling_time: str
    score: str
    period: str
    units: str = Field(description="Which cases and tasks count for a department.")
    ranked: str = Field(description="Which rows are ranked.")


class KpiRow(BaseModel):
    key: str = Field(description="The street, community, segment, category or unit code.")
    name: str
    national_code: str | None = Field(
        default=None,
        description="By category: the category's class in the deployment's national edition "
        "(`event:0401`); null elsewhere and where its table has no code.",
    )
    counts: dict[str, int]
    rates: dict[str, float | None] = Field(description="0..1; null when nothing to divide by.")
    handling_hours_median: float | None = Field(description="Working hours, dispatch to feedback.")
    handling_hours_p90: float | None
    score: float | None = Field(description="Composite score out of 100 (综合指标值).")
    basis: int = Field(description="Registered cases (units: tasks to handle) behind the rates.")
    ranked: bool = Field(
        description="Has a score and a basis of at least ROADCHIEF_ASSESSMENT_MIN_CASES."
    )
    rank: int | None


class KpiReport(BaseModel):
    by: str
    date_from: date
    date_to: date
    as_of: LocalMoment = Field(description="Events up to here count: the period's end, or now.")
    complete: bool = Field(description="The period is over: its figures will not change.")
    weights: dict[str, float]
    min_cases: int
    rows: list[KpiRow]
    total: KpiRow
    frozen: bool = Field(default=False, description="Read from the closed period's figures.")


class CaseRow(BaseModel):
    """A case as assessors list and export it; its history: `GET /api/v1/cases/{number}`."""

    number: str
    status: CaseStatus
    source: CaseSource
    category_code: str
    category_name: str | None
    national_code: str | None = Field(
        description="The category's class in the deployment's national edition "
        "(`event:0401`); null where its table has no code."
    )
    national_name: str | None = Field(description="That class's name (国标分类).")
    urgency: Urgency
    description: str
    reported_at: LocalMoment
    handle_due_at: HandleDueAt
    stage: Stage
    stage_due_at: StageDueAt
    closed_at: LocalMoment | None
    street_code: str | None
    street_name: str | None
    community_code: str | None
    community_name: str | None
    grid_cell_code: str | None
    segment_code: str | None
    segment_name: str | None
    lead_unit: UnitBrief | None
    units: list[UnitBrief] = Field(
        description="The units handling it (承办单位), lead first: not those released or "
        "whose return the centre upheld."
    )
    released_units: list[UnitBrief] = Field(
        description="Units that had a task and were released or had their return upheld."
    )
    overdue: bool = Field(description="A task was marked overdue.")
    rework_count: int
    report_count: int
    lon: float
    lat: float


class DeductionIn(PointIn):
    """One finding against a checklist item, placed (where it was found) and photographed."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(examples=["R03"])
    count: int = Field(default=1, ge=1, le=50, description="Occurrences found.")
    note: Note | None = None
    photo_ids: list[DatabaseId] = Field(max_length=9, description="At least one (uploaded first).")
    open_case: bool = Field(default=False, description="Report it at once as a case.")
    urgency: Urgency | None = None


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_code: str = Field(examples=["RS-H00-01"])
    started_at: Moment
    ended_at: Moment
    track: list[tuple[float, float]] | None = Field(
        default=None,
        min_length=2,
        max_length=5000,
        description="The walk, [lon, lat] points in `coordinate_system`.",
    )
    coordinate_system: CoordinateSystemFlag = CoordinateSystem.WGS84
    note: Note | None = None
    deductions: list[DeductionIn] = Field(default_factory=list, max_length=200)


class DeductionOut(BaseModel):
    item_code: str
    item_name: str
    category_code: str
    count: int
    points: float
    note: str | None
    lon: float
    lat: float
    distance_m: float = Field(description="From the segment.")
    unit_code: str | None = Field(description="The department it is charged to.")
    case_number: str | None
    photos: list[PhotoOut]


class InspectionOut(BaseModel):
    id: int
    segment_code: str
    segment_name: str
    assessor: str
    started_at: LocalMoment
    ended_at: LocalMoment
    note: str | None
    checklist_name: str
    deducted: float
    score: float = Field(description="100 minus the deductions, at least 0.")
    has_track: bool
    deductions: list[DeductionOut]


class InspectionScoreRow(BaseModel):
    key: str
    name: str
    inspections: int
    score: float
    grade: ExcellenceGrade | None = Field(description="Segments: the 千百十 grade it earns.")


class InspectionScores(BaseModel):
    by: str
    date_from: date
    date_to: date
    inspections: int
    rows: list[InspectionScoreRow]
    frozen: bool = Field(default=False, description="Read from the closed period's figures.")


class RankingRow(BaseModel):
    key: str
    name: str
    case_score: float | None = Field(description="Composite KPI score, if enough cases.")
    inspection_score: float | None
    score: float | None = Field(description="The two combined by the ranking weights.")
    cases: int = Field(
        description="Registered cases (units: tasks to handle) behind the case score."
    )
    inspections: int
    rank: int | None
    flag: str | None = Field(description="`red` (红旗) or `black` (黑旗).")
    last_place_twice: bool = Field(description="Last this period and the one before (约谈).")


class RankingOut(BaseModel):
    kind: str
    period: str = Field(examples=["2026-11", "2026-W47"])
    date_from: date
    date_to: date
    complete: bool
    previous_period: str
    previous_last: str | None = Field(description="Last place of the period before.")
    weights: dict[str, float]
    rows: list[RankingRow]
    frozen: bool = Field(default=False, description="Read from the closed period's figures.")


class DistrictScore(BaseModel):
    period: str
    weights: dict[str, float]
    streets: float | None = Field(description="Mean score of the ranked street offices.")
    units: float | None = Field(description="Mean score of the ranked departments.")
    score: float | None


class CorrectionIn(BaseModel):
    """Change one frozen figure, saying why."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(examples=["ranking:street"])
    key: str = Field(examples=["410199001"])
    field: str = Field(
        examples=["score"],
        description="`score`, `case_score`, `inspection_score`, `counts.<code>` or "
        "`rates.<code>`; a ranking is ranked and flagged again.",
    )
    value: float
    reason: Note


class CorrectionOut(BaseModel):
    kind: str
    key: str
    field: str
    old_value: float | None
    new_value: float
    reason: str
    corrected_at: LocalMoment
    corrected_by: str | None


class PeriodOut(BaseModel):
    label: str
    date_from: date
    date_to: date
    closed_at: LocalMoment
    closed_by: str | None
    snapshots: list[str] = Field(description="The frozen answers: `kpis:street`, ...")
    corrections: list[CorrectionOut]


class HeatmapProperties(BaseModel):
    code: str = Field(description="The grid cell's or the segment's code.")
    cases: int


class HeatmapFeature(Feature[Polygon | LineString, HeatmapProperties]):
    """One grid cell (a polygon) or road segment (a line) with its cases."""


class Heatmap(FeatureCollection[HeatmapFeature]):
    """Cases per grid cell or road segment (GeoJSON FeatureCollection); only places with
    cases are listed, most cases first."""

    level: Literal["grid_cell", "segment"]
    max_cases: int = Field(description="The most cases of one place (0 when none).")
