"""Assessment schemas: KPI rows of a period, and the definitions behind them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from app.cases.models import CaseSource, CaseStatus
from app.routing.models import Urgency


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


class KpiRow(BaseModel):
    key: str = Field(description="The street, community, segment, category or unit code.")
    name: str
    counts: dict[str, int]
    rates: dict[str, float | None] = Field(description="0..1; null when nothing to divide by.")
    handling_hours_median: float | None = Field(description="Working hours, dispatch to feedback.")
    handling_hours_p90: float | None
    score: float | None = Field(description="Composite score out of 100 (综合指标值).")
    basis: int = Field(description="Registered cases (units: tasks dispatched) behind the rates.")
    ranked: bool = Field(description="Enough cases to be ranked (ROADCHIEF_ASSESSMENT_MIN_CASES).")
    rank: int | None


class KpiReport(BaseModel):
    by: str
    date_from: date
    date_to: date
    as_of: datetime = Field(description="Events up to here count: the period's end, or now.")
    complete: bool = Field(description="The period is over: its figures will not change.")
    weights: dict[str, float]
    min_cases: int
    rows: list[KpiRow]
    total: KpiRow


class CaseRow(BaseModel):
    """A case as assessors list and export it; its history: `GET /api/v1/cases/{number}`."""

    number: str
    status: CaseStatus
    source: CaseSource
    category_code: str
    urgency: Urgency
    description: str
    reported_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    street_code: str | None
    community_code: str | None
    grid_cell_code: str | None
    segment_code: str | None
    lead_unit: str | None
    units: list[str] = Field(description="Every unit that had a task, in dispatch order.")
    overdue: bool = Field(description="A task was marked overdue.")
    rework_count: int
    report_count: int
    lon: float
    lat: float
