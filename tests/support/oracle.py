"""A second computation of the assessment figures, deliberately naive: every case's events
are replayed one by one in plain Python, up to the moment that counts, and summed as the
rules of `docs/kpis.md` say, without SQL and without the service's code. The property test
of the figures compares the service with it; fact tables kept as events happen can be
checked against it the same way.

Events in, figures out:

    history = load(session)                  # what the database stores, as plain records
    report = kpis(history, by="unit", start=..., end=..., now=..., weights=..., min_cases=5)
    report.rows["urban-management"].counts["closed"], report.total.rates["closure"], ...
    board = ranking(history, kind="unit", period=Window(...), before=Window(...), ...)

`start`, `end` are the period's bounds (aware datetimes, end exclusive); figures are as of
`min(end, now)`. No inspections: a ranking here is the case KPIs' alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseEvent
from app.reports.models import Report
from app.territory.models import RoadSegment, Unit
from app.whistles.models import Whistle, WhistleSummons

NONE_KEY = "-"
HIGHER_IS_BETTER = {"on_time_sign_for": True, "on_time_handling": True, "closure": True,
                    "on_time_closure": True, "rework": False, "extension": False,
                    "whistle_on_time": True}  # fmt: skip
#: Rate: (numerator, denominator), both counted below.
RATES = {
    "on_time_sign_for": ("signed_on_time", "sign_for_due"),
    "on_time_handling": ("fed_back_on_time", "handling_due"),
    "closure": ("closed", "registered"),
    "on_time_closure": ("closed_on_time", "registered"),
    "rework": ("reworked", "cases_fed_back"),
    "extension": ("extensions", "to_handle"),
    "whistle_on_time": ("whistles_on_time", "whistles_due"),
}
COUNTS = ("reports", "cases", "registered", "rejected", "cancelled", "dispatched", "released",
          "to_handle", "fed_back", "closed", "overdue", "returns_upheld", "returns_refused",
          "extensions", "whistles_due")  # fmt: skip
MIN_SCORED_SHARE = 0.4


# --- what the database stores, as plain records --------------------------------------------


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    at: datetime
    to_status: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class CaseRecord:
    id: int
    source: str
    reported_at: datetime
    places: dict[str, str | None]  # street, community, segment, category
    events: tuple[Event, ...]  # in the order they happened (by id)
    report_times: tuple[datetime, ...]


@dataclass(frozen=True)
class SummonsRecord:
    unit: str
    blown_at: datetime
    due_at: datetime
    reported_at: datetime | None
    places: dict[str, str | None]


@dataclass(frozen=True)
class History:
    cases: tuple[CaseRecord, ...]
    unit_codes: dict[int, str]
    summonses: tuple[SummonsRecord, ...]


def load(session: Session) -> History:
    """Every case with its events and reports, every unit's code, every whistle summons."""
    events: dict[int, list[Event]] = {}
    for e in session.scalars(select(CaseEvent).order_by(CaseEvent.id)):
        events.setdefault(e.case_id, []).append(
            Event(
                e.id,
                e.kind.value,
                e.occurred_at,
                e.to_status.value if e.to_status else None,
                dict(e.detail or {}),
            )
        )
    reports: dict[int, list[datetime]] = {}
    for case_id, received_at in session.execute(select(Report.case_id, Report.received_at)):
        reports.setdefault(case_id, []).append(received_at)
    cases = tuple(
        CaseRecord(
            c.id,
            c.source.value,
            c.reported_at,
            {
                "street": c.street_code,
                "community": c.community_code,
                "segment": c.segment_code,
                "category": c.category_code,
            },
            tuple(events.get(c.id, [])),
            tuple(reports.get(c.id, [])),
        )
        for c in session.scalars(select(Case).order_by(Case.id))
    )
    unit_codes: dict[int, str] = {i: c for i, c in session.execute(select(Unit.id, Unit.code))}
    summonses = []
    for s, w, segment in session.execute(
        select(WhistleSummons, Whistle, RoadSegment.code)
        .join(Whistle, WhistleSummons.whistle_id == Whistle.id)
        .outerjoin(RoadSegment, Whistle.segment_id == RoadSegment.id)
    ):
        path = w.jurisdiction_path.strip("/").split("/")
        summonses.append(SummonsRecord(
            unit_codes[s.unit_id], w.blown_at, w.report_in_due_at, s.reported_at,
            {"street": path[1] if len(path) > 1 else None,
             "community": path[2] if len(path) > 2 else None,
             "segment": segment, "category": w.category_code},
        ))  # fmt: skip
    return History(cases, unit_codes, tuple(summonses))


# --- one case, replayed -------------------------------------------------------------------


@dataclass
class Task:
    """A unit's task on a case, as its events made it."""

    state: str = "working"  # working (pending, signed, done, asking to return), released, returned
    signed: datetime | None = None
    sign_late: datetime | None = None
    fed: datetime | None = None
    fed_hours: float | None = None
    late: datetime | None = None
    upheld: int = 0
    refused: int = 0
    extensions: int = 0


@dataclass
class Replayed:
    """A case as it stood at the cutoff."""

    status: str | None = None
    registered: bool = False
    rejected: bool = False
    cancelled: bool = False
    fed_back: bool = False
    reworked: bool = False
    overdue: bool = False
    lead: str | None = None
    tasks: dict[str, Task] = field(default_factory=dict)

    @property
    def lead_now(self) -> str | None:
        """The unit the case counts for: its latest dispatch's first, unless that unit's
        return was upheld since."""
        if self.lead is None or self.tasks[self.lead].state == "returned":
            return None
        return self.lead


def replay(case: CaseRecord, codes: dict[int, str], cutoff: datetime) -> Replayed:
    out = Replayed(registered=case.source == "whistle")
    for e in case.events:
        if e.at >= cutoff:
            break
        if e.to_status is not None:
            out.status = e.to_status
        unit = codes.get(e.detail.get("unit_id", -1))
        task = out.tasks.get(unit) if unit is not None else None
        if e.kind == "dispatched" or (e.kind == "whistle_blown" and e.to_status is not None):
            for code in e.detail["units"]:
                if code not in out.tasks:
                    out.tasks[code] = Task()
                elif out.tasks[code].state != "working":
                    out.tasks[code].state = "working"  # dispatched again
            out.lead = e.detail["units"][0]
        elif e.kind in ("registered", "fixed_on_spot"):
            out.registered = True
        elif e.kind == "rejected":
            out.rejected = True
        elif e.kind == "cancelled":
            out.cancelled = True
        elif e.kind == "rework":
            out.reworked = True
        elif task is None:
            continue  # the rest are a unit's
        elif e.kind == "signed_for" and task.signed is None:
            task.signed = e.at
        elif e.kind == "sign_for_overdue" and task.sign_late is None:
            task.sign_late = e.at
        elif e.kind == "fed_back":
            out.fed_back = True
            if task.fed is None:
                task.fed, task.fed_hours = e.at, e.detail.get("working_hours")
        elif e.kind == "overdue":
            out.overdue = True
            if task.late is None:
                task.late = e.at
        elif e.kind == "released":
            task.state = "released"
        elif e.kind == "return_decided":
            if e.detail.get("upheld"):
                task.state, task.upheld = "returned", task.upheld + 1
            else:
                task.refused += 1
        elif e.kind == "extension_decided" and e.detail.get("granted"):
            task.extensions += 1
    return out


# --- figures ------------------------------------------------------------------------------


@dataclass
class Row:
    counts: dict[str, int]
    rates: dict[str, float | None]
    hours_median: float | None
    hours_p90: float | None
    score: float | None
    basis: int
    ranked: bool
    rank: int | None = None


@dataclass
class Figures:
    rows: dict[str, Row]
    total: Row


def percentile(values: list[float], share: float) -> float:
    """Linear between the closest ranks (the 'inclusive' method)."""
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def composite(rates: dict[str, float | None], weights: dict[str, float]) -> float | None:
    present = {code: w for code, w in weights.items() if w > 0 and rates[code] is not None}
    if not present or sum(present.values()) < MIN_SCORED_SHARE * sum(weights.values()):
        return None
    points = 0.0
    for code, w in present.items():
        value = rates[code]
        assert value is not None
        points += w * (value if HIGHER_IS_BETTER[code] else 1 - value)
    return round(points / sum(present.values()) * 100, 2)


def kpis(
    history: History, *, by: str, start: datetime, end: datetime, now: datetime,
    weights: dict[str, float], min_cases: int,
) -> Figures:  # fmt: skip
    """The KPIs of the cases reported in [start, end), as of min(end, now), per `by`."""
    cutoff = min(end, now)
    tallies: dict[str, dict[str, int]] = {}
    hours: dict[str, list[float]] = {}
    total: dict[str, int] = {}
    total_hours: list[float] = []

    def add(key: str | None, name: str, n: int | bool = 1) -> None:
        for tally in ([tallies.setdefault(key, {})] if key is not None else []) + [total]:
            tally[name] = tally.get(name, 0) + int(n)

    def place(case: CaseRecord, replayed: Replayed) -> str | None:
        if by == "unit":
            return replayed.lead_now
        return case.places[by] or NONE_KEY

    for case in history.cases:
        replayed = replay(case, history.unit_codes, cutoff)
        for received in case.report_times:
            if start <= received < cutoff:
                add(place(case, replayed), "reports")
        if not start <= case.reported_at < end:
            continue
        key = place(case, replayed)
        valid = not replayed.cancelled
        registered = replayed.registered and valid
        closed = replayed.status == "closed"
        add(key, "cases")
        add(key, "registered", registered)
        add(key, "rejected", replayed.rejected)
        add(key, "cancelled", replayed.cancelled)
        add(key, "closed", closed)
        add(key, "closed_on_time", closed and not replayed.overdue)
        add(key, "cases_fed_back", registered and replayed.fed_back)
        add(key, "reworked", registered and replayed.reworked)
        for unit, task in replayed.tasks.items():
            task_key = unit if by == "unit" else case.places[by] or NONE_KEY
            add(task_key, "dispatched")
            add(task_key, "released", task.state == "released")
            add(task_key, "returns_upheld", task.upheld)
            add(task_key, "returns_refused", task.refused)
            if task.state != "working" or not valid:
                continue  # not work to rank on
            add(task_key, "to_handle")
            on_time = task.signed is not None and (
                task.sign_late is None or task.signed < task.sign_late
            )
            add(task_key, "signed_on_time", on_time)
            add(task_key, "sign_for_due", task.signed is not None or task.sign_late is not None)
            add(task_key, "fed_back", task.fed is not None)
            add(task_key, "fed_back_on_time",
                task.fed is not None and (task.late is None or task.fed < task.late))  # fmt: skip
            add(task_key, "handling_due", task.fed is not None or task.late is not None)
            add(task_key, "overdue", task.late is not None)
            add(task_key, "extensions", task.extensions)
            if task.fed is not None and task.fed_hours is not None:
                hours.setdefault(task_key, []).append(task.fed_hours)
                total_hours.append(task.fed_hours)
    for s in history.summonses:
        if start <= s.blown_at < end and s.due_at <= cutoff:
            key = s.unit if by == "unit" else s.places[by] or NONE_KEY
            add(key, "whistles_due")
            add(key, "whistles_on_time", s.reported_at is not None and s.reported_at <= s.due_at)

    def row(key: str, tally: dict[str, int], spent: list[float]) -> Row:
        # As published: rates to 4 decimals, the score from those, to 2.
        rates = {code: (round(tally.get(top, 0) / tally[below], 4) if tally.get(below) else None)
                 for code, (top, below) in RATES.items()}  # fmt: skip
        score = composite(rates, weights)
        basis = tally.get("to_handle" if by == "unit" else "registered", 0)
        return Row(
            counts={name: tally.get(name, 0) for name in COUNTS}, rates=rates,
            hours_median=percentile(spent, 0.5) if spent else None,
            hours_p90=percentile(spent, 0.9) if spent else None,
            score=score, basis=basis,
            ranked=key not in (NONE_KEY, "total") and score is not None and basis >= min_cases,
        )  # fmt: skip

    rows = {key: row(key, tally, hours.get(key, [])) for key, tally in tallies.items()}
    ranked = sorted((key for key, r in rows.items() if r.ranked),
                    key=lambda key: (-(rows[key].score or 0), key))  # fmt: skip
    for rank, key in enumerate(ranked, start=1):
        rows[key].rank = rank
    return Figures(rows, row("total", total, total_hours))


# --- rankings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Place:
    key: str
    score: float | None
    rank: int | None
    flag: str | None
    last_place_twice: bool


def ranking(
    history: History, *, kind: str, period: Window, before: Window, now: datetime,
    weights: dict[str, float], min_cases: int, red: int, black: int,
) -> list[Place]:  # fmt: skip
    """The period's ranking of street offices or units from their case KPIs alone (no
    inspections): the ranked rows best first, then the rest by key."""

    def scored(window: Window) -> list[tuple[str, float | None]]:
        report = kpis(history, by=kind, start=window.start, end=window.end, now=now,
                      weights=weights, min_cases=min_cases)  # fmt: skip
        rows = [(k, r.score if r.ranked else None) for k, r in report.rows.items() if k != "-"]
        return sorted(rows, key=lambda r: (r[1] is None, -(r[1] or 0), r[0]))

    rows = scored(period)
    last_before = [k for k, s in scored(before) if s is not None][-1:]
    ranked = [k for k, s in rows if s is not None]
    flags: dict[str, str] = {}
    if len(ranked) > red + black:
        flags |= {k: "red" for k in ranked[:red]}
        flags |= {k: "black" for k in ranked[len(ranked) - black :]}
    return [
        Place(
            k,
            s,
            ranked.index(k) + 1 if s is not None else None,
            flags.get(k),
            bool(ranked) and k == ranked[-1] and [k] == last_before,
        )
        for k, s in rows
    ]


# --- the facts kept as events happen --------------------------------------------------------


def facts(history: History, now: datetime) -> dict[tuple[int, str], dict[str, Any]]:
    """What `case_facts` should hold now, from the replay above: per case ("" for the
    case's own row) and per unit dispatched to it (by code)."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for case in history.cases:
        r = replay(case, history.unit_codes, now)
        place = {"reported_at": case.reported_at, **{
            f"{name}_code": value for name, value in case.places.items()}}  # fmt: skip
        out[(case.id, "")] = {
            **place, "status": r.status, "registered": int(r.registered),
            "rejected": int(r.rejected), "cancelled": int(r.cancelled),
            "fed_back": int(r.fed_back), "reworked": int(r.reworked),
            "overdue": int(r.overdue), "lead": r.lead_now,
        }  # fmt: skip
        for unit, task in r.tasks.items():
            out[(case.id, unit)] = {
                **place, "cancelled": int(r.cancelled), "state": task.state,
                "signed_at": task.signed, "sign_late_at": task.sign_late, "fed_at": task.fed,
                "fed_hours": task.fed_hours if task.fed is not None else None,
                "late_at": task.late, "upheld": task.upheld, "refused": task.refused,
                "extensions": task.extensions,
            }  # fmt: skip
    return out
