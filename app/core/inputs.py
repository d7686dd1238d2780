"""The bounded types every API input is read with: database ids and moments and days.

A value the storage cannot hold (an id past PostgreSQL's INTEGER, a moment that overflows
when turned into UTC) is refused here, as a 422 naming the field, instead of failing deep in a
query with a 500. Cursors and photos' EXIF dates use the same bounds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

#: The largest id a database column holds: ids are INTEGER, 32-bit on PostgreSQL.
MAX_DATABASE_ID = 2**31 - 1
#: The years the service speaks of (服务年份): its calendar's, and any sane phone clock's.
FIRST_YEAR, LAST_YEAR = 2000, 2100
_OUTSIDE = f"须在 {FIRST_YEAR} 年至 {LAST_YEAR} 年之间"

#: A row's id, in a path, a query or a body: 1 to 2^31 - 1.
DatabaseId = Annotated[int, Field(ge=1, le=MAX_DATABASE_ID)]


def within_service_years(value: date) -> bool:
    """Whether a day or a moment (its year as written, in its own offset) lies in the
    service's years: far enough from year 1 and 9999 that no conversion overflows."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def _moment(value: datetime) -> datetime:
    if not within_service_years(value):
        raise ValueError(f"时间{_OUTSIDE}")
    return value


def _day(value: date) -> date:
    if not within_service_years(value):
        raise ValueError(f"日期{_OUTSIDE}")
    return value


#: A moment with its offset (+08:00), within the service's years.
Moment = Annotated[AwareDatetime, AfterValidator(_moment)]
#: A local day, within the service's years.
Day = Annotated[date, AfterValidator(_day)]
