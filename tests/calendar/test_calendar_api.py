"""Admins keep the working calendar: the official holidays and make-up days are there, and
a year the official data does not cover yet can be filled in by hand."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import SYSTEM
from app.calendar import service as calendar_service
from app.calendar.models import CalendarDay
from app.calendar.schemas import CalendarYearIn
from app.calendar.service import forget_calendar, replace_year_overrides, working_calendar
from app.settings import Settings
from tests.support.databases import DatabaseFactory, migrate


def day(year_page: dict[str, Any], iso: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in year_page["days"] if d["date"] == iso)
    return found


def test_a_year_shows_the_official_holidays_and_make_up_days(client: TestClient) -> None:
    year = client.get("/api/v1/calendar/2026").json()
    assert (year["official_data"], len(year["days"])) == (True, 365)
    assert year["working_hours"] == ["08:30-12:00", "13:30-17:30"]
    national_day = day(year, "2026-10-01")
    assert (national_day["is_workday"], national_day["source"]) == (False, "official")
    assert day(year, "2026-10-10")["is_workday"] is True  # a Saturday made a working day
    assert 240 <= year["workdays"] <= 255


def test_an_admin_fills_in_a_year_and_deadlines_follow(
    client: TestClient, as_user: Any, session: Session, settings: Settings
) -> None:
    assert client.get("/api/v1/calendar/2027").json()["official_data"] is False
    # This process remembers the calendar; the admin's change reaches it at once all the same.
    assert working_calendar(session, settings).is_workday(date(2027, 2, 8)) is True
    body = {
        "days": [
            {"date": "2027-02-08", "is_workday": False, "note": "春节"},
            {"date": "2027-02-06", "is_workday": True, "note": "春节调休上班"},
        ]
    }
    year = client.put("/api/v1/admin/calendar/2027", json=body).json()
    assert day(year, "2027-02-08") | {"note": None} == {
        "date": "2027-02-08", "is_workday": False, "official_is_workday": True,
        "source": "override", "note": None,
    }  # fmt: skip
    assert day(year, "2027-02-06")["is_workday"] is True
    calendar = working_calendar(session, settings)
    friday_evening = datetime(2027, 2, 5, 17, 0, tzinfo=settings.zone)
    # Half an hour on Friday, then the make-up Saturday; Monday the 8th is off.
    due = calendar.add_working_hours(friday_evening, 8)
    assert due.astimezone(settings.zone).date() == date(2027, 2, 6)

    replaced = client.put("/api/v1/admin/calendar/2027", json={"days": []}).json()
    assert day(replaced, "2027-02-08")["source"] == "official"  # the whole year is replaced


def test_bad_calendar_edits_are_refused(client: TestClient, as_user: Any) -> None:
    outside = client.put(
        "/api/v1/admin/calendar/2027",
        json={"days": [{"date": "2028-01-01", "is_workday": False}]},
    )
    assert (outside.status_code, outside.json()["code"]) == (422, "date_outside_year")
    twice = client.put(
        "/api/v1/admin/calendar/2027",
        json={"days": [{"date": "2027-05-01", "is_workday": False}] * 2},
    )
    assert (twice.status_code, twice.json()["code"]) == (422, "duplicate_date")
    not_admin = client.put(
        "/api/v1/admin/calendar/2027", json={"days": []}, headers=as_user("demo-dispatcher")
    )
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "forbidden")
    assert client.get("/api/v1/calendar/1999").status_code == 422


def test_other_servers_count_an_admins_change_within_the_cache_time(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process remembers the overrides for `calendar_cache_seconds`: every step and
    report sets a deadline, and the calendar changes a few times a year."""
    clock = [1000.0]
    monkeypatch.setattr(calendar_service, "_monotonic", lambda: clock[0])
    forget_calendar()
    spring_festival = date(2027, 2, 8)  # a Monday, and 2027 has no official data yet
    assert working_calendar(session, settings).is_workday(spring_festival) is True

    # Another server's admin: the row reaches the shared database, not this process.
    session.add(CalendarDay(day=spring_festival, is_workday=False, note="春节"))
    session.flush()
    clock[0] += settings.calendar_cache_seconds - 1
    assert working_calendar(session, settings).is_workday(spring_festival) is True
    clock[0] += 1
    assert working_calendar(session, settings).is_workday(spring_festival) is False

    uncached = settings.model_copy(update={"calendar_cache_seconds": 0})
    session.add(CalendarDay(day=date(2027, 2, 6), is_workday=True, note="调休上班"))
    session.flush()
    assert working_calendar(session, uncached).is_workday(date(2027, 2, 6)) is True


SPRING_FESTIVAL_2027 = date(2027, 2, 8)  # a Monday; 2027 has no official data yet
FESTIVAL_OFF = CalendarYearIn.model_validate(
    {"days": [{"date": "2027-02-08", "is_workday": False, "note": "春节"}]}
)


def test_the_admins_process_counts_the_change_at_once_in_its_reads_too(
    factory: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's reads (queue pages, case views) and the jobs run on the read-only form of
    the engine, the steps on the engine: one calendar for both, forgotten for both."""
    monkeypatch.setattr(calendar_service, "_monotonic", lambda: 1000.0)  # the cache holds
    forget_calendar()
    database = factory.database(factory.new_url())
    migrate(database)
    settings = factory.settings(database.engine.url.render_as_string(hide_password=False))
    with database.new_session(write=False) as reading:
        assert working_calendar(reading, settings).is_workday(SPRING_FESTIVAL_2027) is True
    with database.new_session() as writing:
        replace_year_overrides(writing, settings, SYSTEM, 2027, FESTIVAL_OFF)
    with database.new_session(write=False) as reading:
        assert working_calendar(reading, settings).is_workday(SPRING_FESTIVAL_2027) is False
    with database.new_session() as writing:
        assert working_calendar(writing, settings).is_workday(SPRING_FESTIVAL_2027) is False


def test_a_read_begun_before_the_change_is_used_but_not_remembered(
    factory: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose transaction began before the admin's change committed may read the
    old overrides (SQLite's snapshot starts at its first read): it uses them, and the next
    request reads again instead of finding them remembered."""
    monkeypatch.setattr(calendar_service, "_monotonic", lambda: 1000.0)
    forget_calendar()
    database = factory.database(factory.new_url())
    migrate(database)
    settings = factory.settings(database.engine.url.render_as_string(hide_password=False))
    with database.new_session(write=False) as early:
        early.execute(select(CalendarDay.day)).all()  # its snapshot is taken
        with database.new_session() as writing:
            replace_year_overrides(writing, settings, SYSTEM, 2027, FESTIVAL_OFF)
        working_calendar(early, settings)  # old or new, depending on the engine
    with database.new_session(write=False) as later:
        assert working_calendar(later, settings).is_workday(SPRING_FESTIVAL_2027) is False
