"""Whistles' settings (`ROADCHIEF_WHISTLE_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class WhistleSettings(BaseSettings):
    """Where a whistle may be blown and how a department reports in."""

    model_config = ENV_CONFIG

    whistle_report_in_minutes: int = Field(
        default=30, ge=5, le=24 * 60, description="Default time to report in on a whistle."
    )
    whistle_report_in_radius_m: float = Field(
        default=150.0, gt=0, le=2000, description="A report-in must be this close to the place."
    )
    whistle_place_max_distance_m: float = Field(
        default=100.0,
        gt=0,
        le=1000,
        description="A whistle's place must be this close to the chief's road segment.",
    )
