"""A deadline a person names (an extension asked for, the term the centre grants) counts on
the official working calendar: a moment outside working time moves on to the next working
moment, and the answer shows the moment that counts. A whistle's report-in time is
wall-clock minutes, at any hour: it is a summons to the site, not a working term.

Every date is pinned: 2026-11-21 is a Saturday, 2026-10-01..07 the National Day holiday,
2026-02-14 the make-up working Saturday before the Spring Festival (2026-02-15..23).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import Headers
from tests.support.cases import Loop, task_of
from tests.support.places import Spot
from tests.support.whistles import blow

WEDNESDAY = "2026-11-18T10:00:00+08:00"


def _ask(loop: Loop, moment: str) -> dict[str, object]:
    case = loop.ok("demo-staff", "request_extension", note="需采购配件", new_due_at=moment)
    return task_of(case, "urban-management")


@pytest.mark.time_machine(WEDNESDAY)
def test_an_extension_to_a_saturday_counts_from_monday_morning(
    dispatched: Loop, anonymous: TestClient, as_user: Headers
) -> None:
    loop = dispatched
    year = anonymous.get("/api/v1/calendar/2026", headers=as_user("demo-staff")).json()
    saturday = next(d for d in year["days"] if d["date"] == "2026-11-21")
    assert saturday["is_workday"] is False  # the calendar the service publishes

    asked = _ask(loop, "2026-11-21T10:00:00+08:00")
    assert asked["extension_requested_until"] == "2026-11-23T08:30:00+08:00"
    granted = loop.ok(
        "demo-dispatcher", "decide_extension", unit_code="urban-management", approved=True
    )
    task = task_of(granted, "urban-management")
    assert (task["handle_due_at"], task["extension_count"]) == ("2026-11-23T08:30:00+08:00", 1)
    assert granted["handle_due_at"] == granted["stage_due_at"] == "2026-11-23T08:30:00+08:00"
    assert granted["stage"] == "handle"


def _on(now: str, asked: str, counted: str, name: str) -> object:
    return pytest.param(asked, counted, id=name, marks=pytest.mark.time_machine(now))


@pytest.mark.parametrize(
    ("asked", "counted"),
    [
        _on(WEDNESDAY, "2026-11-24T15:00:00+08:00", "2026-11-24T15:00:00+08:00", "working-time"),
        _on(WEDNESDAY, "2026-11-24T17:30:00+08:00", "2026-11-24T17:30:00+08:00", "end-of-day"),
        _on(WEDNESDAY, "2026-11-24T12:30:00+08:00", "2026-11-24T13:30:00+08:00", "lunch-break"),
        _on(WEDNESDAY, "2026-11-24T18:00:00+08:00", "2026-11-25T08:30:00+08:00", "after-hours"),
        _on(WEDNESDAY, "2026-11-24T02:00:00Z", "2026-11-24T10:00:00+08:00", "another-offset"),
        _on("2026-09-28T10:00:00+08:00", "2026-10-03T10:00:00+08:00",
            "2026-10-08T08:30:00+08:00", "national-day"),
        _on("2026-02-11T10:00:00+08:00", "2026-02-14T10:00:00+08:00",
            "2026-02-14T10:00:00+08:00", "make-up-saturday-is-working"),
        _on("2026-02-11T10:00:00+08:00", "2026-02-14T18:00:00+08:00",
            "2026-02-24T08:30:00+08:00", "spring-festival-eve"),
    ],
)  # fmt: skip
def test_an_extension_counts_at_the_next_working_moment(
    dispatched: Loop, asked: str, counted: str
) -> None:
    loop = dispatched
    assert _ask(loop, asked)["extension_requested_until"] == counted
    granted = loop.ok(
        "demo-dispatcher", "decide_extension", unit_code="urban-management", approved=True
    )
    assert task_of(granted, "urban-management")["handle_due_at"] == counted


@pytest.mark.time_machine(WEDNESDAY)
def test_the_term_the_centre_grants_itself_counts_the_same_way(dispatched: Loop) -> None:
    loop = dispatched
    _ask(loop, "2026-11-27T15:00:00+08:00")
    granted = loop.ok(
        "demo-dispatcher", "decide_extension", unit_code="urban-management", approved=True,
        new_due_at="2026-11-28T09:00:00+08:00",  # a Saturday: Monday 08:30 counts
    )  # fmt: skip
    assert task_of(granted, "urban-management")["handle_due_at"] == "2026-11-30T08:30:00+08:00"


@pytest.mark.time_machine("2026-11-18T11:30:00+08:00", tick=False)
def test_an_extension_that_adds_no_working_time_is_refused(dispatched: Loop) -> None:
    loop = dispatched
    lead = task_of(loop.read("demo-staff"), "urban-management")
    # 8 working hours from Wednesday 11:30: Thursday 12:00, just before the lunch break.
    assert lead["handle_due_at"] == "2026-11-19T12:00:00+08:00"
    before = loop.read("demo-staff")
    refused = loop.act(
        "demo-staff", "request_extension", note="午休后再修", new_due_at="2026-11-19T13:00:00+08:00"
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "deadline_not_later")
    assert refused.json()["counted_due_at"] == "2026-11-19T13:30:00+08:00"
    assert loop.read("demo-staff")["version"] == before["version"]  # nothing changed


@pytest.mark.time_machine("2026-11-21T10:00:00+08:00")  # a Saturday
def test_a_whistles_report_in_time_is_wall_clock_minutes_at_any_hour(
    client: TestClient, as_user: Headers, spot: Spot
) -> None:
    whistle = blow(client, as_user, spot, report_in_minutes=30)
    assert whistle["blown_at"].startswith("2026-11-21T10:00")
    assert whistle["report_in_due_at"].startswith("2026-11-21T10:30")
