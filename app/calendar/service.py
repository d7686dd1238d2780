"""Deadlines counted in working hours (工作时) on China's official calendar.

Working days are Monday to Friday, minus the public holidays and plus the make-up working
days (调休) the State Council publishes each year, as kept by the `chinesecalendar`
package; an admin's `CalendarDay` rows override single dates (and cover years the package
does not know yet). Working hours are the deployment's periods of each working day, in its
time zone.
"""

from __future__ import annotations

import threading
import time as clock
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import Pool, delete, event, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.audit.models import AuditEventType
from app.audit.service import record
from app.calendar.models import CalendarDay
from app.calendar.schemas import CalendarDayOut, CalendarYearIn, CalendarYearOut
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings


def day_bounds(zone: tzinfo, first: date, last: date) -> tuple[datetime, datetime]:
    """The local midnight that starts `first` and the one that ends `last`: a range of
    whole local days as the instants that bound it."""
    return (
        datetime.combine(first, time.min, zone),
        datetime.combine(last + timedelta(days=1), time.min, zone),
    )


Period = tuple[date, date]  # first and last day, local, inclusive
#: The longest range of days a duty (patrols, shop visits) is judged over at once.
MAX_RANGE_DAYS = 92


class BadDateRange(Problem):
    code = "bad_date_range"
    status = 422
    title = "日期范围无效"


def local_days(settings: Settings, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """A duty's range of days, checked (ordered, at most `MAX_RANGE_DAYS`): its first and
    after-last local midnights."""
    if date_to < date_from or (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise BadDateRange(f"起止日期须有序，且不超过 {MAX_RANGE_DAYS} 天")
    return day_bounds(settings.zone, date_from, date_to)


def monday_of(day: date) -> date:
    """The first day of `day`'s week (Monday to Sunday)."""
    return day - timedelta(days=day.weekday())


def week_periods(date_from: date, date_to: date) -> list[Period]:
    """The weeks (Monday to Sunday) that overlap the range, whole."""
    first = monday_of(date_from)
    mondays = (first + timedelta(weeks=i) for i in range((date_to - first).days // 7 + 1))
    return [(monday, monday + timedelta(days=6)) for monday in mondays]


def judged_periods(
    periods: Iterable[Period], today: date, met: Callable[[Period], bool]
) -> tuple[list[Period], list[Period]]:
    """The periods a duty (patrols, shop visits) is judged on, and the missed ones among
    them. One rule for every duty: a period that has ended is judged; the period still
    running is judged only once it is met, never missed before it ends."""
    judged: list[Period] = []
    missed: list[Period] = []
    for period in periods:
        done = met(period)
        if period[1] < today or done:
            judged.append(period)
            if not done:
                missed.append(period)
    return judged, missed


def met_share(met: int, judged: int) -> float | None:
    """The share of judged periods met; None when none is judged yet (not a perfect 1)."""
    return round(met / judged, 4) if judged else None


def official_workday(day: date) -> bool:
    """China's official answer; plain Monday to Friday for years it does not cover."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


@dataclass(frozen=True)
class WorkingCalendar:
    zone: ZoneInfo
    #: The working periods of a working day, in local time, in order.
    periods: tuple[tuple[time, time], ...]
    overrides: Mapping[date, bool] = field(default_factory=dict)
    #: Each day's periods, worked out once: a queue of 50 tasks asks for the same weeks.
    _days: dict[date, list[tuple[datetime, datetime]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        return official_workday(day)

    def _day_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        periods = self._days.get(day)
        if periods is None:
            periods = self._days[day] = (
                [
                    (datetime.combine(day, a, self.zone), datetime.combine(day, b, self.zone))
                    for a, b in self.periods
                ]
                if self.is_workday(day)
                else []
            )
        return periods

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` working hours after `start` (aware; returned in UTC)."""
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(3660):  # ten years of days: a safe bound for any time limit
            for a, b in self._day_periods(day):
                begin = max(a, local)
                if begin >= b:
                    continue
                if begin + remaining <= b:
                    return (begin + remaining).astimezone(ZoneInfo("UTC"))
                remaining -= b - begin
            day += timedelta(days=1)
        raise ValueError("no working hours within ten years: check the calendar")

    def next_working_moment(self, moment: datetime) -> datetime:
        """A deadline a person names, as it counts: the one rule for every deadline set by
        hand (an extension asked for or granted). A moment inside a working period, its
        bounds included, stays; any other moves on to the start of the next working period
        (Saturday 10:00 to Monday 08:30, 12:30 to 13:30, 18:00 to the next working day's
        08:30). The working time up to it is the same; it falls due when people work.
        Returned in UTC."""
        local = moment.astimezone(self.zone)
        day = local.date()
        for _ in range(3660):  # ten years of days, as `add_working_hours`
            for a, b in self._day_periods(day):
                if local <= b:
                    return max(a, local).astimezone(ZoneInfo("UTC"))
            day += timedelta(days=1)
        raise ValueError("no working hours within ten years: check the calendar")

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from `start` to `end` (negative if `end` comes first)."""
        if end < start:
            return -self.working_hours_between(end, start)
        a_local, b_local = start.astimezone(self.zone), end.astimezone(self.zone)
        total = timedelta()
        day = a_local.date()
        while day <= b_local.date():
            for a, b in self._day_periods(day):
                lo, hi = max(a, a_local), min(b, b_local)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 3600


_OVERRIDES = select(CalendarDay.day, CalendarDay.is_workday)


class _Remembered:
    """The calendar a process last read from one database, and when (monotonic)."""

    __slots__ = ("calendar", "read_at")

    def __init__(self, calendar: WorkingCalendar, read_at: float) -> None:
        self.calendar = calendar
        self.read_at = read_at


#: Per database, keyed by its connection pool, which the engine's read-only form shares:
#: every step and report sets a deadline, and the overrides change a few times a year. The
#: calendar kept also keeps the days it worked out.
_REMEMBERED: weakref.WeakKeyDictionary[Pool, _Remembered] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
#: The cache's clock (tests move it).
_monotonic = clock.monotonic
#: Moves at every `forget_calendar`. A calendar read in a transaction that began before the
#: latest forget is used but not kept: its snapshot may predate the change.
_generation = 0


@event.listens_for(Session, "after_begin")
def _note_generation(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info["calendar_generation"] = _generation


def _pool(session: Session) -> Pool:
    return session.get_bind().engine.pool


def working_calendar(session: Session, settings: Settings) -> WorkingCalendar:
    """The official calendar with the admins' overrides: what this process read within the
    last `calendar_cache_seconds`, else read now."""
    ttl = settings.calendar_cache_seconds
    pool = _pool(session)
    now = _monotonic()
    with _LOCK:
        kept = _REMEMBERED.get(pool)
    if kept is not None and now - kept.read_at < ttl and kept.calendar.zone == settings.zone \
            and kept.calendar.periods == settings.working_hours:  # fmt: skip
        return kept.calendar
    overrides = dict(session.execute(_OVERRIDES).all())
    calendar = WorkingCalendar(settings.zone, settings.working_hours, overrides)
    began = session.info.get("calendar_generation")  # set when this transaction began
    if ttl > 0:
        with _LOCK:
            if began == _generation:
                _REMEMBERED[pool] = _Remembered(calendar, now)
    return calendar


def forget_calendar() -> None:
    """Every deadline of this process from now on reads the overrides again: after it
    changed them (its own requests, reads included, see the change at once), and after a
    test rolled its changes back."""
    global _generation
    with _LOCK:
        _REMEMBERED.clear()
        _generation += 1


class DateOutsideYear(Problem):
    code = "date_outside_year"
    status = 422
    title = "日期不在该年份内"


class DuplicateDate(Problem):
    code = "duplicate_date"
    status = 422
    title = "同一日期出现了两次"


def has_official_data(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def calendar_year(
    session: Session, settings: Settings, principal: Principal, year: int
) -> CalendarYearOut:
    """Every day of `year`: working or not, and whether an admin's override decides it."""
    principal.require(Permission.CASES_READ)
    rows = {
        row.day: row
        for row in session.scalars(
            select(CalendarDay).where(
                CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)
            )
        )
    }
    days = []
    day = date(year, 1, 1)
    while day.year == year:
        official = official_workday(day)
        row = rows.get(day)
        days.append(
            CalendarDayOut(
                date=day,
                is_workday=row.is_workday if row else official,
                official_is_workday=official,
                source="override" if row else "official",
                note=row.note if row else None,
            )
        )
        day += timedelta(days=1)
    return CalendarYearOut(
        year=year,
        working_hours=[f"{a:%H:%M}-{b:%H:%M}" for a, b in settings.working_hours],
        official_data=has_official_data(year),
        workdays=sum(d.is_workday for d in days),
        days=days,
    )


def replace_year_overrides(
    session: Session, settings: Settings, principal: Principal, year: int, body: CalendarYearIn
) -> CalendarYearOut:
    """An admin sets the year's exceptions (a local holiday, a declared working day, or a
    year the official data does not cover yet). Deadlines already set keep their moment;
    new ones count on the new calendar."""
    principal.require(Permission.CALENDAR_MANAGE)
    outside = sorted({d.date.isoformat() for d in body.days if d.date.year != year})
    if outside:
        raise DateOutsideYear(f"不属于 {year} 年：{'、'.join(outside)}", dates=outside)
    seen: set[date] = set()
    for d in body.days:
        if d.date in seen:
            raise DuplicateDate(f"日期 {d.date} 出现了两次", date=d.date.isoformat())
        seen.add(d.date)
    session.execute(
        delete(CalendarDay).where(
            CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)
        )
    )
    session.add_all(
        CalendarDay(day=d.date, is_workday=d.is_workday, note=d.note) for d in body.days
    )
    record(session, AuditEventType.CALENDAR_CHANGED, actor=principal, year=year,
           overrides=len(body.days))  # fmt: skip
    session.commit()
    forget_calendar()
    return calendar_year(session, settings, principal, year)
