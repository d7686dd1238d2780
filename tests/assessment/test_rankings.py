"""The month's ranking of street offices: case KPIs and inspections combined, a red flag
for the best, a black flag for the worst, and the street last two months running marked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessment.models import Inspection
from app.assessment.rankings import period_bounds
from app.core.database import utcnow
from app.territory.models import Jurisdiction, JurisdictionLevel
from tests.support import Headers, Jpeg
from tests.support.assessment import finding, inspection
from tests.support.cases import Loop
from tests.support.places import Spot, on_segment
from tests.support.reports import upload

SHANGHAI = ZoneInfo("Asia/Shanghai")


def this_month() -> str:
    return f"{utcnow().astimezone(SHANGHAI):%Y-%m}"


def streets(session: Session) -> list[Spot]:
    level = Jurisdiction.level == JurisdictionLevel.STREET
    codes = session.scalars(select(Jurisdiction.code).where(level).order_by(Jurisdiction.code))
    return [on_segment(session, street=code) for code in codes]


def inspect(client: TestClient, headers: dict[str, str], spot: Spot, photo: int,
            lost: int) -> dict[str, Any]:  # fmt: skip
    """An inspection losing `lost` points (R01 is 2 points an occurrence)."""
    body = (
        inspection(spot, finding(spot, "R01", photo, count=lost // 2)) if lost else inspection(spot)
    )
    made = client.post("/api/v1/assessment/inspections", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["score"] == 100 - lost
    result: dict[str, Any] = made.json()
    return result


def ranking(client: TestClient, as_user: Headers, **params: str) -> dict[str, Any]:
    answer = client.get("/api/v1/assessment/rankings", headers=as_user("demo-dispatcher"),
                        params={"kind": "street", "period": this_month(), **params})  # fmt: skip
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.time_machine(datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI))
def test_inspections_alone_rank_the_streets_and_the_last_twice_is_marked(
    client: TestClient, as_user: Headers, session: Session, good_jpeg: Jpeg
) -> None:
    """November 2026 against October 2026."""
    assessor = as_user("demo-assessor")
    photo = upload(client, good_jpeg(), headers=assessor)["id"]
    first, second, third = streets(session)
    # October: the first street is last.
    october = datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI)
    for spot, lost in ((first, 30), (second, 10), (third, 6)):
        made = inspect(client, assessor, spot, photo, lost)
        row = session.get_one(Inspection, made["id"])
        row.started_at, row.ended_at = october, october + timedelta(hours=1)
    session.flush()
    # November: last again.
    for spot, lost in ((first, 30), (second, 6), (third, 10)):
        inspect(client, assessor, spot, photo, lost)
    board = ranking(client, as_user)
    assert [(r["key"], r["rank"], r["score"], r["flag"]) for r in board["rows"]] == [
        (second.street_code, 1, 94.0, "red"),
        (third.street_code, 2, 90.0, None),
        (first.street_code, 3, 70.0, "black"),
    ]
    assert [r["last_place_twice"] for r in board["rows"]] == [False, False, True]
    # The first street's own chief sees their row, with the district's place and flag.
    own = client.get("/api/v1/assessment/rankings", headers=as_user("demo-chief-2"),
                     params={"kind": "street", "period": this_month()}).json()  # fmt: skip
    assert own["rows"] == [board["rows"][2]]
    assert board["rows"][0]["case_score"] is None  # no cases: inspections alone
    district = client.get("/api/v1/assessment/district-score", params={"period": this_month()},
                          headers=as_user("demo-dispatcher")).json()  # fmt: skip
    assert district["streets"] == pytest.approx((94 + 90 + 70) / 3, abs=0.01)


def test_case_kpis_and_inspections_combine_by_the_ranking_weights(
    client: TestClient, as_user: Headers, session: Session, good_jpeg: Jpeg,
    month: dict[str, Loop],
) -> None:  # fmt: skip
    """The month's three cases lie in the first street: 2 registered, too few to rank on
    (ROADCHIEF_ASSESSMENT_MIN_CASES 5), so its inspection counts alone."""
    assessor = as_user("demo-assessor")
    photo = upload(client, good_jpeg(), headers=assessor)["id"]
    first = next(s for s in streets(session) if s.street_code == month["a"].read(
        "demo-dispatcher")["street_code"])  # fmt: skip
    inspect(client, assessor, first, photo, 10)
    [row] = [r for r in ranking(client, as_user)["rows"] if r["key"] == first.street_code]
    assert (row["cases"], row["case_score"], row["score"]) == (2, None, 90.0)


@pytest.mark.parametrize("label", ["2026-13", "2026-W54", "2026/11", "november"])
def test_a_bad_period_is_refused(client: TestClient, as_user: Headers, label: str) -> None:
    answer = client.get("/api/v1/assessment/rankings", params={"kind": "street", "period": label},
                        headers=as_user("demo-dispatcher"))  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (422, "bad_period")


def test_periods_and_the_one_before() -> None:
    assert period_bounds("2026-01")[2] == "2025-12"
    assert period_bounds("2026-W01")[2] == "2025-W52"
    first, last, _ = period_bounds("2026-02")
    assert (first.day, last.day) == (1, 28)
