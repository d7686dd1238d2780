"""Deadlines in working hours on China's official calendar, and GCJ-02 conversion."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from shapely import Point

from app.calendar.service import WorkingCalendar
from app.core.coords import gcj02_to_wgs84, wgs84_to_gcj02
from app.core.geo import LocalFrame

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Within the morning, then across lunch.
        (local(2026, 11, 23, 9, 0), 2, local(2026, 11, 23, 11, 0)),
        (local(2026, 11, 23, 11, 0), 2, local(2026, 11, 23, 14, 30)),
        # Reported at night: the clock starts next morning.
        (local(2026, 11, 23, 22, 0), 1, local(2026, 11, 24, 9, 30)),
        # Friday afternoon to Monday.
        (local(2026, 11, 27, 17, 0), 1, local(2026, 11, 30, 9, 0)),
        # National Day 2026: 1-7 Oct off, and Saturday 10 Oct is a make-up working day.
        (local(2026, 9, 30, 17, 0), 1, local(2026, 10, 8, 9, 0)),
        (local(2026, 10, 9, 17, 0), 1, local(2026, 10, 10, 9, 0)),
        # Three working days of 7.5 hours.
        (local(2026, 11, 23, 8, 30), 22.5, local(2026, 11, 25, 17, 30)),
    ],
)
def test_deadlines_count_only_working_hours(start: datetime, hours: float, due: datetime) -> None:
    calendar = WorkingCalendar(SHANGHAI, DAY)
    assert calendar.add_working_hours(start, hours) == due
    assert calendar.working_hours_between(start, due) == pytest.approx(hours)


def test_an_admin_day_beats_the_official_calendar() -> None:
    calendar = WorkingCalendar(SHANGHAI, DAY, {date(2026, 11, 24): False})
    assert calendar.add_working_hours(local(2026, 11, 23, 17, 0), 1) == local(2026, 11, 25, 9, 0)


def test_gcj02_round_trip_and_offset() -> None:
    lon, lat = 113.6268, 34.8104  # north Zhengzhou
    glon, glat = wgs84_to_gcj02(lon, lat)
    offset = LocalFrame(lon, lat).distances_m([Point(glon, glat)])[0]
    assert 100 < offset < 700  # the datum shift is hundreds of metres in China
    back = gcj02_to_wgs84(glon, glat)
    assert back == pytest.approx((lon, lat), abs=1e-8)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)  # outside China: no shift
