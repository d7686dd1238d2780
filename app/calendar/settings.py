"""The working day (`ROADCHIEF_WORKING_HOURS`), parsed once into its periods."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.core.config import ENV_CONFIG

#: A working day's periods in local time, in order: ((08:30, 12:00), (13:30, 17:30)).
Periods = tuple[tuple[time, time], ...]


class CalendarSettings(BaseSettings):
    """When a working day works."""

    model_config = ENV_CONFIG

    working_hours: Annotated[Periods, NoDecode] = Field(
        default="08:30-12:00,13:30-17:30",
        validate_default=True,
        description="Working periods of a working day, local time: deadlines count these.",
    )
    calendar_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long a process trusts what it last read of the admins' calendar "
        "overrides before reading them again; a change reaches the process that made it at "
        "once and every other within this time. 0 reads them for every deadline.",
    )

    @field_validator("working_hours", mode="before")
    @classmethod
    def _periods(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            periods = parse_periods(value)
        except ValueError as exc:
            raise ValueError("expected 'HH:MM-HH:MM,HH:MM-HH:MM'") from exc
        flat = [t for period in periods for t in period]
        if flat != sorted(flat) or any(a == b for a, b in periods):
            raise ValueError("periods must be non-empty, in order and not overlapping")
        return periods


def parse_periods(text: str) -> Periods:
    """'08:30-12:00,13:30-17:30' → ((08:30, 12:00), (13:30, 17:30))."""
    periods = []
    for part in text.split(","):
        a, b = (time.fromisoformat(x.strip()) for x in part.split("-"))
        periods.append((a, b))
    return tuple(periods)
