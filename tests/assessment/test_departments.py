"""Departments are scored on what they had to do: each case counts for the unit its own
latest dispatch put in the lead, and a unit is ranked only on the tasks it had to handle (a
released co-unit did nothing, well or badly)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support import Headers, Jpeg
from tests.support.desk import Desk
from tests.support.places import Spot, on_segment

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOVEMBER = "2026-11"
WEDNESDAY = datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def desk(client: TestClient, as_user: Headers, good_jpeg: Jpeg) -> Desk:
    return Desk(client, as_user, good_jpeg)


def places(session: Session, count: int) -> list[Spot]:
    """Points on different segments (further apart than the duplicate radius)."""
    return [on_segment(session, street="410199001", skip=i * 3) for i in range(count)]


def unit_rows(client: TestClient, as_user: Headers, **params: str) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/v1/assessment/kpis", headers=as_user("demo-assessor"),
                        params={"by": "unit", "from": "2026-11-01", "to": "2026-11-30",
                                **params})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {row["key"]: row for row in answer.json()["rows"]}


def unit_ranking(client: TestClient, as_user: Headers) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/v1/assessment/rankings", headers=as_user("demo-assessor"),
                        params={"kind": "unit", "period": NOVEMBER})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {row["key"]: row for row in answer.json()["rows"]}


@pytest.mark.time_machine(WEDNESDAY)
def test_each_case_counts_for_the_lead_of_its_own_latest_dispatch(
    client: TestClient, as_user: Headers, desk: Desk, session: Session,
    staff: Callable[[str], str],
) -> None:  # fmt: skip
    """Two potholes closed by 区城管局 stay 区城管局's when another case is dispatched to
    another unit, and dispatching a third one back changes nothing for the other."""
    um = staff("urban-management")
    first, second, third, fourth = places(session, 4)
    closed = []
    for spot in (first, second):
        number = desk.report(spot)
        desk.dispatch(number, "urban-management")
        desk.handle(number, um)
        desk.verify(number)
        closed.append(number)
    elsewhere = desk.report(third)
    desk.dispatch(elsewhere, "transport-enforcement-huiji")

    rows = unit_rows(client, as_user)
    um_row, te_row = rows["urban-management"], rows["transport-enforcement-huiji"]
    assert {k: um_row["counts"][k] for k in ("reports", "cases", "registered", "closed")} == {
        "reports": 2, "cases": 2, "registered": 2, "closed": 2,
    }  # fmt: skip
    assert {k: te_row["counts"][k] for k in ("reports", "cases", "registered", "closed")} == {
        "reports": 1, "cases": 1, "registered": 1, "closed": 0,
    }  # fmt: skip
    assert um_row["rates"]["closure"] == 1.0

    desk.dispatch(desk.report(fourth), "urban-management")
    again = unit_rows(client, as_user)
    assert (again["urban-management"]["counts"]["cases"], again["urban-management"]["counts"][
        "closed"]) == (3, 2)  # fmt: skip
    assert again["transport-enforcement-huiji"]["counts"]["cases"] == 1
    # The filter by unit reads the same rows.
    only = unit_rows(client, as_user, unit="transport-enforcement-huiji")
    assert list(only) == ["transport-enforcement-huiji"]
    assert only["transport-enforcement-huiji"]["counts"] == again["transport-enforcement-huiji"][
        "counts"]  # fmt: skip


@pytest.mark.time_machine(WEDNESDAY)
def test_a_released_co_unit_is_listed_but_not_ranked(
    client: TestClient, as_user: Headers, desk: Desk, session: Session,
    staff: Callable[[str], str],
) -> None:  # fmt: skip
    """Five potholes: 区城管局 handles each on time, 区交通局 is released from each without
    doing anything. The released unit has nothing to be ranked on: no rate, no score, no
    place, no flag; 区城管局 is first."""
    um = staff("urban-management")
    for spot in places(session, 5):
        number = desk.report(spot)
        desk.dispatch(number, "urban-management", "transport")
        desk.ok(number, "demo-dispatcher", "release", unit_code="transport", note="无需协办")
        desk.handle(number, um)
        desk.verify(number)

    rows = unit_rows(client, as_user)
    released = rows["transport"]
    assert {k: released["counts"][k] for k in ("dispatched", "released", "to_handle")} == {
        "dispatched": 5, "released": 5, "to_handle": 0,
    }  # fmt: skip
    assert set(released["rates"].values()) == {None}  # nothing to divide by: missing, not 100 %
    assert (released["score"], released["basis"], released["ranked"], released["rank"]) == (
        None, 0, False, None,
    )  # fmt: skip
    lead = rows["urban-management"]
    assert (lead["counts"]["to_handle"], lead["basis"], lead["rank"]) == (5, 5, 1)
    assert lead["rates"]["on_time_handling"] == 1.0

    board = unit_ranking(client, as_user)
    assert (board["urban-management"]["rank"], board["urban-management"]["score"]) == (
        1, lead["score"],
    )  # fmt: skip
    assert (board["transport"]["rank"], board["transport"]["flag"],
            board["transport"]["score"]) == (None, None, None)  # fmt: skip
    district = client.get("/api/v1/assessment/district-score", params={"period": NOVEMBER},
                          headers=as_user("demo-assessor")).json()  # fmt: skip
    assert district["units"] == lead["score"]


@pytest.mark.time_machine(WEDNESDAY)
def test_a_score_resting_on_too_few_rates_is_missing(
    client: TestClient, as_user: Headers, desk: Desk, session: Session,
    staff: Callable[[str], str],
) -> None:  # fmt: skip
    """Five co-unit tasks not yet signed for nor due: only the extension rate (0 %) can be
    computed. A score out of 5 % of the weights is no score: not 100, not ranked."""
    for spot in places(session, 5):
        desk.dispatch(desk.report(spot), "urban-management", "forestry-landscape")
    waiting = unit_rows(client, as_user)["forestry-landscape"]
    assert waiting["counts"]["to_handle"] == 5
    assert waiting["rates"]["extension"] == 0.0
    assert [k for k, v in waiting["rates"].items() if v is not None] == ["extension"]
    assert (waiting["score"], waiting["ranked"], waiting["rank"]) == (None, False, None)
    assert unit_ranking(client, as_user)["forestry-landscape"]["rank"] is None
