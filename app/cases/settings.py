"""The loop's settings: deadlines warned and escalated, verification, reopening
(`ROADCHIEF_DEADLINE_WARNING_FRACTION`, `ROADCHIEF_ESCALATION_STEP_HOURS`...)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class CaseSettings(BaseSettings):
    """Deadlines, verification and reopening of cases."""

    model_config = ENV_CONFIG

    verify_max_distance_m: float = Field(
        default=200.0, gt=0, le=5000, description="Verification must be done this close."
    )
    deadline_warning_fraction: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="A unit is warned when this share of its handling time is used up.",
    )
    escalation_step_hours: float = Field(
        default=8.0,
        gt=0,
        le=200,
        description="Working hours an overdue task waits before escalating one level further.",
    )
    reopen_days: int = Field(
        default=30, ge=0, le=365, description="Days after closing that a case may be reopened."
    )
