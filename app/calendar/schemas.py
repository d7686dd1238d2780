"""Working-calendar schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class CalendarDayOut(BaseModel):
    date: dt.date
    is_workday: bool
    official_is_workday: bool = Field(description="China's official answer for the date.")
    source: Literal["official", "override"]
    note: str | None


class CalendarYearOut(BaseModel):
    year: int
    working_hours: list[str] = Field(description='Periods of a working day ("08:30-12:00").')
    official_data: bool = Field(
        description="Whether the official holiday data covers this year (if not, Monday to "
        "Friday, plus the overrides)."
    )
    workdays: int
    days: list[CalendarDayOut]


class CalendarOverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date
    is_workday: bool
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class CalendarYearIn(BaseModel):
    """All of a year's overrides: they replace the year's current ones."""

    model_config = ConfigDict(extra="forbid")

    days: list[CalendarOverrideIn] = Field(max_length=366)
