"""Moments at the API's edges: stored in UTC, spoken in the deployment's zone.

Every moment an answer carries is a `LocalMoment`: whatever zone the value has inside
(UTC from the database, the caller's offset from a request), it leaves in the zone the
deployment speaks (`ROADCHIEF_TIME_ZONE`, Asia/Shanghai: `2026-11-18T10:00:00+08:00`).
The zone is process-wide, like the logging set-up: `create_app` sets it from the settings.
Webhook payloads and stored event details, written by hand, use `local_isoformat`; local
computations (a calendar day, a time in a message, an export's text, a page of the console)
use `to_local` and `local_today`, never a zone of their own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import PlainSerializer, WithJsonSchema

#: The zone spoken when the deployment names none (the default of ROADCHIEF_TIME_ZONE).
DEFAULT_ZONE = "Asia/Shanghai"
#: What every moment in the OpenAPI document is shown as (the test of the document checks it).
MOMENT_EXAMPLE = "2026-11-18T10:00:00+08:00"

_zone = ZoneInfo(DEFAULT_ZONE)


def speak_zone(zone: ZoneInfo) -> None:
    """Set the zone answers speak (at start-up, from the settings)."""
    global _zone
    _zone = zone


def to_local(value: datetime) -> datetime:
    """The moment in the zone the API speaks (an aware moment; naive ones are UTC's)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(_zone)


def month_end(value: datetime) -> datetime:
    """The end of the local month `value` falls in (the first moment of the next), in UTC."""
    local = to_local(value)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    after = (first + timedelta(days=32)).replace(day=1)
    return after.astimezone(UTC)  # wall-clock arithmetic: DST-safe


def local_isoformat(value: datetime) -> str:
    return to_local(value).isoformat()


def local_today() -> date:
    """Today in the zone the API speaks (a duty's day, a period's end)."""
    return datetime.now(UTC).astimezone(_zone).date()


#: A moment in an answer: serialized in the deployment's zone, with its offset.
LocalMoment = Annotated[
    datetime,
    PlainSerializer(to_local, return_type=datetime),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": [MOMENT_EXAMPLE]}),
]
