"""Patrols' settings: what a fix must be, what covers a segment, and each road-chief
level's duty (`ROADCHIEF_PATROL_*`, `ROADCHIEF_WORKSTATION_RADIUS_M`), the duties parsed
once into `PatrolDuty` values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.core.config import ENV_CONFIG


@dataclass(frozen=True)
class PatrolDuty:
    """How often a chief of one level must patrol, and what (巡查频次)."""

    period: Literal["daily", "weekly"]
    #: daily: patrols each working day; weekly: days with a patrol each week (Mon–Sun).
    days: int
    #: each: every one of the chief's segments, each on its own; any: a day counts when a
    #: patrol of the chief's completely covered at least one of their segments (a street
    #: head's daily round of the area, 每日巡查辖区各路段).
    scope: Literal["each", "any"] = "each"


class PatrolSettings(BaseSettings):
    """Patrol fixes, coverage and duties."""

    model_config = ENV_CONFIG

    patrol_max_accuracy_m: float = Field(
        default=50.0, gt=0, le=1000, description="A patrol fix less accurate is left out."
    )
    patrol_max_speed_mps: float = Field(
        default=35.0,
        gt=0,
        le=300,
        description="A fix further from the last good one than this speed allows is a jump.",
    )
    patrol_fix_grace_minutes: int = Field(
        default=30,
        ge=0,
        le=24 * 60,
        description="An ended patrol still takes fixes (an offline queue) for this long.",
    )
    patrol_max_fixes_per_minute: int = Field(
        default=60,
        ge=1,
        le=600,
        description="A patrol holds at most this many fixes per minute it has lasted "
        "(plus one batch): a phone records one a second.",
    )
    patrol_offline_start_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 7,
        description="A patrol may be started this long ago (an offline start); no earlier.",
    )
    patrol_coverage_buffer_m: float = Field(
        default=30.0,
        gt=0,
        le=200,
        description="A segment's part this close to the track is covered.",
    )
    patrol_complete_share: float = Field(
        default=0.8, gt=0, le=1, description="Share of a segment to cover for a complete patrol."
    )
    workstation_radius_m: float = Field(
        default=100.0, gt=0, le=1000, description="Check in and out this close to a workstation."
    )
    patrol_duties: Annotated[dict[int, PatrolDuty], NoDecode] = Field(
        default="1:daily:1:any,2:weekly:3:any,3:weekly:2:each",
        validate_default=True,
        description="Patrol duty per road-chief level, 'level:daily|weekly:days:each|any': "
        "on every working day, or on that many days a week, a complete patrol of each of "
        "one's segments (each), or of at least one of them (any).",
    )

    @field_validator("patrol_duties", mode="before")
    @classmethod
    def _duties(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_duties(value)
        except ValueError as exc:
            raise ValueError(f"expected 'level:daily|weekly:days:each|any,...' ({exc})") from exc


def parse_duties(text: str) -> dict[int, PatrolDuty]:
    """'1:daily:1:any,3:weekly:2' → {1: PatrolDuty('daily', 1, 'any'),
    3: PatrolDuty('weekly', 2, 'each')} (the scope defaults to each)."""
    duties: dict[int, PatrolDuty] = {}
    for part in text.split(","):
        level, period, days, *rest = (x.strip() for x in part.split(":"))
        scope = rest[0] if rest else "each"
        if period not in ("daily", "weekly") or int(level) not in (1, 2, 3) or int(days) < 1:
            raise ValueError(part)
        if (period == "weekly" and int(days) > 7) or len(rest) > 1 or scope not in ("each", "any"):
            raise ValueError(part)
        duties[int(level)] = PatrolDuty(period, int(days), scope)  # type: ignore[arg-type]
    return duties
