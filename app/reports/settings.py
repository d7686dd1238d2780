"""Intake's settings: what a report and its photos must be (`ROADCHIEF_REPORT_*`,
`ROADCHIEF_DUPLICATE_RADIUS_M`, `ROADCHIEF_PHOTO_FAR_M`...)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class ReportSettings(BaseSettings):
    """What a report may be, and when it joins an open case."""

    model_config = ENV_CONFIG

    photo_far_m: float = Field(
        default=300.0,
        gt=0,
        description="A photo taken further than this from the point is flagged.",
    )
    photo_old_hours: float = Field(
        default=24.0, gt=0, description="A photo taken this long before the report is flagged."
    )
    report_max_photos: int = Field(default=9, ge=1, le=30)
    report_max_accuracy_m: float = Field(
        default=500.0, gt=0, description="A fix less accurate than this is refused."
    )
    device_clock_skew_minutes: int = Field(
        default=10, ge=0, le=24 * 60, description="How far a device's clock may run ahead."
    )
    duplicate_radius_m: float = Field(
        default=30.0,
        gt=0,
        le=1000,
        description="An open case of the same category this close "
        "to a new report is the same problem.",
    )
