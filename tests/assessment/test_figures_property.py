"""Proof, not examples: random case histories, taken through the API as its people take
them (report, whistle, register, dispatch, re-dispatch to another lead, sign for, return
and its decision, extension and its decision, release, hang-up and resume, feedback,
verification passed or failed, reopen, cancel, report-in) while the clock runs across a
week's end; after each, every KPI the service reports by street, unit and category, and
the ranking of streets and units with their flags, equal what `tests/support/oracle.py`
computes from the same events in plain Python: live in the running week, live once it is
over (later events change nothing), and frozen once it is closed. And the KPI facts kept
with each event (`case_facts`, which the running week's figures read) equal what the oracle
replays, and what `roadchief assessment rebuild-facts` recomputes from the events.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import Principal
from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import (
    create_user,
    principal_for_user,
    set_chief_segments,
    user_by_username,
)
from app.accounts.tokens import issue_access_token
from app.assessment.kpis import parse_weights
from app.cases.facts import CASE_ROW, rebuild
from app.cases.models import CaseFact, CaseFactAtMonthEnd
from app.cases.sweep import sweep
from app.core.database import utcnow
from app.settings import Settings
from app.territory.models import RoadGrade, Unit
from tests.support import Headers, oracle
from tests.support.desk import Desk
from tests.support.places import Spot, on_segment

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNITS = ("urban-management", "transport", "forestry-landscape")
CATEGORIES = ("roads.surface", "order.street_vending")
STREETS = ("410199001", "410199002", "410199003")
# 2026-W22; each example takes its own week after it. The first (the explicit example)
# ends with May: the month's facts as of its end are kept and read once steps follow it.
FIRST_MONDAY = date(2026, 5, 25)
CHIEF, DISPATCHER, ADMIN = "chief-everywhere", "demo-dispatcher", "demo-admin"
DIMENSIONS = ("street", "unit", "category")
Op = tuple[Any, ...]

# A history: the cases opened (reports, whistles), the steps inside the week, the steps
# after it. An op is (kind, a, b); kinds below NEW take a step on case `a`, the `b`-th its
# state allows (0 moves it along the closed loop: the simplest history is the happy path).
NEW, WHISTLE, WAIT, REPORT_IN = 8, 9, 10, 11
WAITS = (1, 3, 9, 26)  # hours
CHOICES = 16
UNFINISHED = ("pending_registration", "registered", "dispatched", "in_progress",
              "awaiting_verification", "hung_up")  # fmt: skip
_op = st.tuples(st.integers(0, REPORT_IN), st.integers(0, 3), st.integers(0, CHOICES - 1))
_opening = st.tuples(st.sampled_from((NEW, NEW, WHISTLE)), st.integers(0, 5), st.integers(0, 3))
#: A history that surely takes the paths where figures go wrong most easily: a co-unit
#: released, an extension granted, rework and then an overdue mark after the first feedback,
#: a hang-up, a lead's return upheld (the case counts for no unit until dispatched again),
#: a whistle joining a case, a report-in; a released unit dispatched again as lead after the
#: lead's return; a dispatched case cancelled; re-dispatch to another lead after the end.
SURE_PATHS = (
    [(NEW, 0, 0), (NEW, 1, 1)],
    [(0, 0, 0), (0, 0, 3), (0, 0, 0), (0, 0, 5), (0, 0, 1), (0, 0, 2), (0, 0, 0), (0, 0, 1),
     (0, 0, 3), (0, 0, 0), (WAIT, 3, 0), (WAIT, 3, 0), (WAIT, 3, 0),
     (0, 1, 0), (0, 1, 1), (0, 1, 1), (0, 1, 0), (WHISTLE, 0, 1), (REPORT_IN, 0, 0),
     (NEW, 1, 0), (0, 2, 0), (0, 2, 5), (0, 2, 4), (0, 2, 1), (0, 2, 0), (0, 2, 0), (0, 2, 0),
     (NEW, 1, 1), (0, 3, 0), (0, 3, 1), (0, 3, 15)],
    [(0, 1, 2), (0, 0, 0), (0, 0, 0)],
)  # fmt: skip
HISTORIES = st.tuples(
    st.lists(_opening, min_size=2, max_size=3),
    st.lists(_op, min_size=16, max_size=28),
    st.lists(_op, min_size=3, max_size=8),
)


class Story:
    """One example's history: its cases and whistles, and the steps on them."""

    def __init__(self, desk: Desk, client: TestClient, as_user: Headers, places: list[Spot],
                 staff_of: dict[str, str]) -> None:  # fmt: skip
        self.desk, self.client, self.as_user = desk, client, as_user
        self.places, self.staff_of = places, staff_of
        self.cases: list[str] = []
        self.whistles: list[tuple[int, Spot, list[str]]] = []

    def run(self, op: Op) -> None:
        kind, a, b = op
        if kind == NEW:
            place = self.places[(a + len(self.cases)) % len(self.places)]
            self.cases.append(self.desk.report(place, CATEGORIES[b % len(CATEGORIES)], who=CHIEF))
        elif kind == WHISTLE:
            self.whistle(self.places[a % len(self.places)], join=bool(b % 2))
        elif kind == REPORT_IN and self.whistles:
            whistle_id, spot, units = self.whistles[a % len(self.whistles)]
            answer = self.client.post(
                f"/api/v1/whistles/{whistle_id}/report-in", json={"lon": spot.lon, "lat": spot.lat},
                headers=self.as_user(self.staff_of[units[b % len(units)]]),
            )  # fmt: skip
            assert answer.status_code < 500, answer.text
        elif kind < NEW and self.cases:
            self.step(self.cases[a % len(self.cases)], b)

    def whistle(self, spot: Spot, *, join: bool) -> None:
        units = list(UNITS[:2])
        body: dict[str, Any] = {
            "segment_code": spot.segment_code, "lon": spot.lon, "lat": spot.lat,
            "category_code": CATEGORIES[0], "description": "路面塌陷，请城管、交通到场",
            "unit_codes": units,
        }  # fmt: skip
        if join and self.cases:
            body["case_number"] = self.cases[-1]
        else:
            body["open_case"] = True
        answer = self.client.post("/api/v1/whistles", json=body, headers=self.as_user(CHIEF))
        assert answer.status_code < 500, answer.text
        if answer.status_code == 201:
            made = answer.json()
            self.whistles.append((made["id"], spot, units))
            if body.get("open_case"):
                self.desk.spots[made["case_number"]] = spot
                self.desk.read(made["case_number"])
                self.cases.append(made["case_number"])

    def step(self, number: str, choice: int) -> None:
        """One of the steps the case's state allows, by `choice`; a refusal is fine (it
        changes nothing)."""
        case = self.desk.seen.get(number) or self.desk.read(number)
        options = self.options(case, choice)
        if options:
            who, action, body = options[choice % len(options)]
            self.desk.act(number, who, action, **body)

    def options(self, case: dict[str, Any], choice: int) -> list[tuple[str, str, dict[str, Any]]]:
        """What may be done to the case now, the step along the loop first. The ends of a
        case come rarely: cancelling with the last choice, rejecting with the last three."""
        status = case["status"]
        if choice == CHOICES - 1 and status in UNFINISHED:
            return [(ADMIN, "cancel", {"note": "撤销"})]
        if status == "pending_registration":
            if choice >= CHOICES - 4:
                return [(DISPATCHER, "reject", {"note": "无效", "reason": "invalid"})]
            return [(DISPATCHER, "register", {})]
        if status == "registered":
            sends = [[lead] for lead in UNITS] + [[lead, UNITS[(i + 1) % len(UNITS)]]
                                                 for i, lead in enumerate(UNITS)]  # fmt: skip
            return [(DISPATCHER, "dispatch", {"units": units, "reason": "派遣"}) for units in sends]
        if status in ("dispatched", "in_progress"):
            out = [option for task in case["tasks"] for option in self.task_options(task)]
            return [*out, (DISPATCHER, "hang_up", {"note": "待资金"})]
        if status == "hung_up":
            return [(DISPATCHER, "resume", {})]
        if status == "awaiting_verification":
            return [
                (CHIEF, "verify_pass", {"on_site": True}),
                (CHIEF, "verify_fail", {"note": "未修好", "photo": True, "on_site": True}),
            ]
        if status == "closed":
            return [(CHIEF, "reopen", {"note": "又坏了"})]
        return []

    def task_options(self, task: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        unit, state = task["unit"]["code"], task["status"]
        staff = self.staff_of[unit]
        out: list[tuple[str, str, dict[str, Any]]] = []
        if state == "pending":
            out += [(staff, "sign_for", {}), (staff, "return", {"note": "非本单位职责"})]
        if state == "signed":
            out.append((staff, "feed_back", {"note": "已处置", "photo": True}))
            if task["handle_due_at"] and not task["extension_requested_until"]:
                later = datetime.fromisoformat(task["handle_due_at"]) + timedelta(days=2)
                out.append((staff, "request_extension",
                            {"note": "等配件", "new_due_at": later.isoformat()}))  # fmt: skip
            out.append((staff, "return", {"note": "非本单位职责"}))
        if state == "return_requested":
            out += [(DISPATCHER, "decide_return", {"unit_code": unit, "approved": yes})
                    for yes in (True, False)]  # fmt: skip
        if task["extension_requested_until"]:
            out += [(DISPATCHER, "decide_extension", {"unit_code": unit, "approved": yes})
                    for yes in (True, False)]  # fmt: skip
        if not task["is_lead"] and state in ("pending", "signed", "return_requested"):
            out.append((DISPATCHER, "release", {"unit_code": unit, "note": "无需协办"}))
        return out


def _same(got: Any, want: Any, tolerance: float) -> bool:
    if got is None or want is None:
        return got is want
    return bool(abs(got - want) <= tolerance)


def assert_rows_match(got: dict[str, Any], want: oracle.Row, where: str) -> None:
    assert got["counts"] == want.counts, where
    for code, value in want.rates.items():
        assert _same(got["rates"][code], value, 1e-9), (where, code, got["rates"][code], value)
    assert _same(got["handling_hours_median"], want.hours_median, 0.006), where
    assert _same(got["handling_hours_p90"], want.hours_p90, 0.006), where
    assert _same(got["score"], want.score, 1e-9), (where, got["score"], want.score)
    assert (got["basis"], got["ranked"], got["rank"]) == (want.basis, want.ranked, want.rank), where


def kept_facts(session: Session) -> dict[tuple[int, str], dict[str, Any]]:
    """`case_facts` as `oracle.facts` spells them (units by code; a task's row holds no
    case figures but its case's cancellation)."""
    codes = dict(session.execute(select(Unit.id, Unit.code)).all())
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for f in session.execute(select(CaseFact.__table__)).mappings():
        place = {name: f[name] for name in ("reported_at", "street_code", "community_code",
                                            "segment_code", "category_code")}  # fmt: skip
        if f["unit_id"] == CASE_ROW:
            out[(f["case_id"], "")] = {
                **place, **{name: f[name] for name in ("status", "registered", "rejected",
                            "cancelled", "fed_back", "reworked", "overdue")},
                "lead": codes.get(f["lead_unit_id"]),
            }  # fmt: skip
        elif f["dispatched"]:
            out[(f["case_id"], codes[f["unit_id"]])] = {
                **place, **{name: f[name] for name in ("cancelled", "state", "signed_at",
                            "sign_late_at", "fed_at", "fed_hours", "late_at", "upheld",
                            "refused", "extensions")},
            }  # fmt: skip
    return out


def assert_facts_match(session: Session, history: oracle.History, now: datetime) -> None:
    """The facts kept step by step equal the oracle's replay of the events, and a rebuild
    from the events writes them again."""
    want = oracle.facts(history, now)
    kept = kept_facts(session)
    assert kept.keys() == want.keys()
    for key, row in want.items():
        assert kept[key] == row, key
    tables = (CaseFact, CaseFactAtMonthEnd)  # the facts now, and as of a month's end
    every = [select(t.__table__).order_by(t.case_id, t.unit_id) for t in tables]
    before = [session.execute(rows).all() for rows in every]
    rebuild(session)
    assert [session.execute(rows).all() for rows in every] == before


@pytest.fixture
def chief(session: Session, settings: Settings) -> list[Spot]:
    """A road chief of two branch roads in each street office; the places on them."""
    places = [on_segment(session, street=street, grade=RoadGrade.BRANCH, skip=skip)
              for street in STREETS for skip in (0, 4)]  # fmt: skip
    user = create_user(session, settings, None, UserCreate(
        username=CHIEF, display_name="路长（全区）", password="Chief@2026-long",
        roles=[Role.ROAD_CHIEF], chief_level=1, jurisdiction_codes=["410199"],
    ))  # fmt: skip
    set_chief_segments(session, None, user.id, [p.segment_code for p in places], reassign=True)
    return places


def test_every_figure_equals_a_naive_replay_of_the_events(
    client: TestClient, session: Session, settings: Settings,
    staff: Callable[[str], str], good_jpeg: Callable[..., bytes], chief: list[Spot],
    time_machine: Any,
) -> None:  # fmt: skip
    staff_of = {unit: staff(unit) for unit in UNITS}
    principals: dict[str, Principal] = {}

    def as_user(username: str) -> dict[str, str]:
        """Headers with a token issued now (the clock jumps), for a user read once."""
        if username not in principals:
            user = user_by_username(session, username)
            assert user is not None
            principals[username] = principal_for_user(user)
        token = issue_access_token(principals[username], utcnow(), settings)
        return {"Authorization": f"Bearer {token}"}

    desk = Desk(client, as_user, good_jpeg)
    weights = parse_weights(settings.assessment_weights)
    minimum = settings.assessment_min_cases
    flags = {"red": settings.assessment_red_flags, "black": settings.assessment_black_flags}
    weeks = itertools.count()

    def kpis(window: oracle.Window, by: str) -> dict[str, Any]:
        first, last = window.start.date(), (window.end - timedelta(days=1)).date()
        params = {"by": by, "from": first.isoformat(), "to": last.isoformat()}
        answer = client.get("/api/v1/assessment/kpis", headers=as_user("demo-assessor"),
                            params=params)  # fmt: skip
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def check(window: oracle.Window, before: oracle.Window, label: str, *, frozen: bool) -> None:
        """The KPIs by each dimension; frozen, the rankings too (the same code ranks a
        running period)."""
        sweep(session, settings)  # as the service's timer would, before anyone reads
        # Read after the sweep's marks, not at their very moment (the clock stands still).
        time_machine.shift(timedelta(seconds=1))
        history, now = oracle.load(session), utcnow()
        assert_facts_match(session, history, now)
        for by in DIMENSIONS:
            report = kpis(window, by)
            assert report["frozen"] is frozen
            want = oracle.kpis(history, by=by, start=window.start, end=window.end, now=now,
                               weights=weights, min_cases=minimum)  # fmt: skip
            assert {r["key"] for r in report["rows"]} == set(want.rows), by
            for row in report["rows"]:
                assert_rows_match(row, want.rows[row["key"]], f"{label} {by} {row['key']}")
            assert_rows_match(report["total"], want.total, f"{label} {by} total")
        for kind in ("street", "unit") if frozen else ():
            answer = client.get("/api/v1/assessment/rankings", headers=as_user("demo-assessor"),
                                params={"kind": kind, "period": label})  # fmt: skip
            assert answer.status_code == 200, answer.text
            board = answer.json()
            assert board["frozen"] is frozen
            places = oracle.ranking(history, kind=kind, period=window, before=before, now=now,
                                    weights=weights, min_cases=minimum, **flags)  # fmt: skip
            got = [(r["key"], r["rank"], r["flag"], r["last_place_twice"]) for r in board["rows"]]
            assert got == [(p.key, p.rank, p.flag, p.last_place_twice) for p in places], kind
            for row, place in zip(board["rows"], places, strict=True):
                assert _same(row["score"], place.score, 0.006), (kind, row, place)

    # Few examples, no shrinking: each runs a week of the loop through the API (seconds);
    # a failure prints its history. ROADCHIEF_FIGURES_EXAMPLES=50 searches further.
    @examples(max_examples=int(os.environ.get("ROADCHIEF_FIGURES_EXAMPLES", "2")),
              derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])  # fmt: skip
    @given(HISTORIES)
    @example(SURE_PATHS)
    def run(history: tuple[list[Op], list[Op], list[Op]]) -> None:
        monday = FIRST_MONDAY + timedelta(weeks=2 * next(weeks))
        start = datetime.combine(monday, datetime.min.time(), SHANGHAI)
        window = oracle.Window(start, start + timedelta(days=7))
        before = oracle.Window(start - timedelta(days=7), start)
        iso = monday.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
        time_machine.move_to(start + timedelta(hours=9), tick=False)
        story = Story(desk, client, as_user, chief, staff_of)
        opening, inside, after = history
        for op in opening + inside:
            advance(op, latest=window.end - timedelta(hours=3))
            story.run(op)
        time_machine.shift(timedelta(minutes=1))
        check(window, before, label, frozen=False)  # the week running
        time_machine.move_to(window.end + timedelta(hours=1), tick=False)
        sweep(session, settings)
        at_end = kpis(window, "unit")
        for op in after:
            advance(op, latest=window.end + timedelta(days=6))
            story.run(op)
        later = kpis(window, "unit")  # over: later events change nothing
        assert (later["complete"], later["rows"], later["total"]) == (
            True, at_end["rows"], at_end["total"],
        )  # fmt: skip
        closing = client.post(f"/api/v1/admin/assessment/periods/{label}/close",
                              headers=as_user(ADMIN))  # fmt: skip
        assert closing.status_code == 200, closing.text
        check(window, before, label, frozen=True)

    def advance(op: Op, latest: datetime) -> None:
        """Each step a few minutes after the last (no two at one moment); a wait moves the
        clock on by hours (not past `latest`, so the steps stay on their side of the week's
        end), and the deadline sweep runs."""
        if op[0] == WAIT:
            time_machine.move_to(min(utcnow() + timedelta(hours=WAITS[op[1] % len(WAITS)]),
                                     max(latest, utcnow())), tick=False)  # fmt: skip
            sweep(session, settings)
        time_machine.shift(timedelta(minutes=3))

    run()
