"""Did each chief patrol their segments as often as their level requires? Week by week
(level 2 and 3) or working day by working day (level 1), with what fell short."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.support import Headers
from tests.support.patrols import AFTER_THAT_WEEK, MONDAY, SUNDAY, patrol_on
from tests.support.places import Spot


def compliance(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(
        "/api/v1/patrols/compliance",
        params={"from": MONDAY.isoformat(), "to": SUNDAY.isoformat(), **params},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.time_machine(AFTER_THAT_WEEK)
def test_a_week_of_patrols_meets_or_misses_each_chiefs_duty(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot
) -> None:
    chief = as_user("demo-chief-3")
    patrol_on(client, chief, session, settings, spot.segment_code, MONDAY)
    patrol_on(client, chief, session, settings, spot.segment_code, date(2026, 11, 11))
    leader = as_user("demo-dispatcher")

    [met] = compliance(client, leader, chief="demo-chief-3", segment=spot.segment_code)["duties"]
    assert (met["duty"], met["periods"], met["met"], met["missed"], met["rate"]) == (
        "weekly:2", 1, 1, [], 1.0,
    )  # fmt: skip
    [short] = compliance(client, leader, chief="demo-chief-2", segment=spot.segment_code)["duties"]
    assert short["duty"] == "weekly:3"
    assert short["missed"] == [
        {
            "start": "2026-11-09",
            "end": "2026-11-15",
            "patrolled_days": 0,
            "required_days": 3,
        }
    ]  # fmt: skip  (the level-3 chief's walks are not the level-2 chief's)

    # The street head's round (scope any): every working day, any of their segments.
    [daily] = compliance(client, leader, chief="demo-chief-1")["duties"]
    assert (daily["scope"], daily["segment_code"], daily["duty"]) == ("any", None, "daily")
    assert (daily["periods"], daily["met"]) == (5, 0)
    assert [m["start"] for m in daily["missed"]] == [f"2026-11-{d:02d}" for d in range(9, 14)]
    patrol_on(client, as_user("demo-chief-1"), session, settings, spot.segment_code, MONDAY)
    [daily] = compliance(client, leader, chief="demo-chief-1")["duties"]
    assert (daily["periods"], daily["met"], daily["rate"]) == (5, 1, 0.2)

    street = compliance(client, leader, street=spot.street_code)
    assert street["streets"][0]["street_code"] == spot.street_code
    assert street["streets"][0]["met"] >= 1
    assert 0 < street["streets"][0]["rate"] < 1


def test_a_bad_range_is_refused(client: TestClient, as_user: Headers) -> None:
    backwards = client.get(
        "/api/v1/patrols/compliance", params={"from": "2026-11-15", "to": "2026-11-09"}
    )
    assert (backwards.status_code, backwards.json()["code"]) == (422, "bad_date_range")
    too_long = client.get(
        "/api/v1/patrols/compliance", params={"from": "2026-01-01", "to": "2026-12-31"}
    )
    assert (too_long.status_code, too_long.json()["code"]) == (422, "bad_date_range")


@pytest.mark.time_machine("2026-11-17T10:00:00+08:00")  # a Tuesday
def test_the_running_day_and_week_are_not_missed_before_they_end(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot
) -> None:
    """On Tuesday a chief whose duty is two days a week has not missed the week, nor a
    street head today's round: judged once met, or once over (as the shop duty is)."""
    leader = as_user("demo-dispatcher")
    week = {"from": "2026-11-16", "to": "2026-11-22"}
    [weekly] = compliance(client, leader, chief="demo-chief-3", segment=spot.segment_code,
                          **week)["duties"]  # fmt: skip
    assert (weekly["periods"], weekly["met"], weekly["missed"], weekly["rate"]) == (0, 0, [], None)
    [daily] = compliance(client, leader, chief="demo-chief-1", **week)["duties"]
    assert (daily["periods"], daily["met"]) == (1, 0)  # Monday is over, Tuesday is not
    assert [m["start"] for m in daily["missed"]] == ["2026-11-16"]

    chief = as_user("demo-chief-3")
    patrol_on(client, chief, session, settings, spot.segment_code, date(2026, 11, 16))
    patrol_on(client, chief, session, settings, spot.segment_code, date(2026, 11, 17))
    [weekly] = compliance(client, leader, chief="demo-chief-3", segment=spot.segment_code,
                          **week)["duties"]  # fmt: skip
    assert (weekly["periods"], weekly["met"], weekly["rate"]) == (1, 1, 1.0)
    patrol_on(client, as_user("demo-chief-1"), session, settings, spot.segment_code,
              date(2026, 11, 17))  # fmt: skip
    [daily] = compliance(client, leader, chief="demo-chief-1", **week)["duties"]
    assert (daily["periods"], daily["met"]) == (2, 1)


@pytest.mark.time_machine(AFTER_THAT_WEEK)
def test_the_period_map_colours_segments_by_coverage(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot
) -> None:
    patrol_on(client, as_user("demo-chief-3"), session, settings, spot.segment_code, MONDAY)
    response = client.get(
        "/api/v1/patrols/coverage-map",
        params={"from": MONDAY.isoformat(), "to": SUNDAY.isoformat(), "street": spot.street_code},
        headers=as_user("demo-chief-2"),
    )
    assert response.status_code == 200, response.text
    features = {f["properties"]["segment_code"]: f for f in response.json()["features"]}
    walked = features[spot.segment_code]["properties"]
    assert (walked["coverage"], walked["complete_patrols"]) == ("complete", 1)
    states = {f["properties"]["coverage"] for f in features.values()}
    assert states >= {"complete", "none"}
    assert {f["properties"]["street_code"] for f in features.values()} == {spot.street_code}
    assert features[spot.segment_code]["geometry"]["type"] == "LineString"
