"""Assessment's settings: the composite score's weights, ranking, flags, closing periods
and field inspections (`ROADCHIEF_ASSESSMENT_*`, `ROADCHIEF_INSPECTION_*`,
`ROADCHIEF_EXCELLENCE_THRESHOLDS`), the weights and thresholds parsed once into mappings
and checked against the KPI table at start."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.assessment.kpis import parse_weights
from app.core.config import ENV_CONFIG, named_numbers
from app.territory.models import ExcellenceGrade

#: The two parts each two-way mix of scores weighs.
PAIRS = {
    "assessment_ranking_weights": ("cases", "inspections"),
    "assessment_group_weights": ("streets", "units"),
}


class AssessmentSettings(BaseSettings):
    """How scores are weighed, ranked, flagged and closed; what an inspection may be."""

    model_config = ENV_CONFIG

    assessment_weights: Annotated[dict[str, float], NoDecode] = Field(
        default="on_time_handling:30,closure:20,on_time_closure:20,rework:10,"
        "on_time_sign_for:10,extension:5,whistle_on_time:5",
        validate_default=True,
        description="Weights of the rates in the composite score (综合指标值), summing to 100.",
    )
    assessment_min_cases: int = Field(
        default=5,
        ge=0,
        description="A unit with fewer registered cases (departments: tasks) is not ranked.",
    )
    assessment_ranking_weights: Annotated[dict[str, float], NoDecode] = Field(
        default="cases:60,inspections:40",
        validate_default=True,
        description="How a ranking combines the case KPI score and the inspection score.",
    )
    assessment_group_weights: Annotated[dict[str, float], NoDecode] = Field(
        default="streets:70,units:30",
        validate_default=True,
        description="The district's score from its street offices' and departments' means "
        "(Boshan: 70 / 30).",
    )
    assessment_auto_close_days: int | None = Field(
        default=3,
        ge=0,
        le=60,
        description="Close (freeze) last month and last week this many days after they end; "
        "empty: only by hand (`roadchief assessment close`).",
    )
    assessment_red_flags: int = Field(default=1, ge=0, le=20, description="红旗: the best N.")
    assessment_black_flags: int = Field(default=1, ge=0, le=20, description="黑旗: the worst N.")
    inspection_checklist: str | None = Field(
        default=None,
        description="A YAML checklist for field inspections; the shipped Guancheng shape "
        "(10 categories, 46 items) if unset.",
    )
    inspection_late_hours: float = Field(
        default=72.0, gt=0, le=24 * 31, description="An inspection may be entered this late."
    )
    inspection_radius_m: float = Field(
        default=100.0, gt=0, le=1000, description="A deduction is placed this close to the segment."
    )
    excellence_thresholds: Annotated[dict[ExcellenceGrade, float], NoDecode] = Field(
        default="ultimate:95,outstanding:90,excellent:85",
        validate_default=True,
        description="The inspection score a segment needs for each 千百十 grade "
        "(极致, 卓越, 优秀) over a period.",
    )

    @field_validator("assessment_weights", mode="before")
    @classmethod
    def _weights(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_weights(value)  # the KPI table is the one truth
        except Exception as exc:
            raise ValueError(str(getattr(exc, "detail", exc))) from exc

    @field_validator("assessment_ranking_weights", "assessment_group_weights", mode="before")
    @classmethod
    def _pair_weights(cls, value: object, info: ValidationInfo) -> object:
        return (
            pair_weights(value, PAIRS[info.field_name or ""]) if isinstance(value, str) else value
        )

    @field_validator("excellence_thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            thresholds = {ExcellenceGrade(g): v for g, v in named_numbers(value).items()}
            if any(v < 0 for v in thresholds.values()):
                raise ValueError("a score is not negative")
        except ValueError as exc:
            grades = "|".join(ExcellenceGrade)
            raise ValueError(f"expected '{grades}:score,...' ({exc})") from exc
        return thresholds


def pair_weights(text: str, names: tuple[str, str]) -> dict[str, float]:
    """'a:60,b:40' over exactly the two `names`, summing to 100 (checked at start-up)."""
    weights = named_numbers(text)
    if set(weights) != set(names) or abs(sum(weights.values()) - 100) > 1e-6:
        raise ValueError(f"expected {names[0]}:N,{names[1]}:M summing to 100")
    return weights
