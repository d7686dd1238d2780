"""Every shop is visited every week; each ground-level chief visits their own shops. Two
weeks of visits, and what the duty report says of shops, chiefs and the street."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.settings import Settings
from app.shops.models import ShopVisit
from app.territory.models import Shop
from tests.support import Headers
from tests.support.shops import visit_body

WEEK_1, WEEK_2 = date(2026, 11, 9), date(2026, 11, 16)


def visited(client: TestClient, headers: dict[str, str], session: Session, settings: Settings,
            shop: Shop, day: date) -> None:  # fmt: skip
    made = client.post(f"/api/v1/shops/{shop.code}/visits", json=visit_body(shop), headers=headers)
    assert made.status_code == 201, made.text
    # As if on that day (the API refuses to date a visit back so far).
    session.execute(
        update(ShopVisit).where(ShopVisit.id == made.json()["id"])
        .values(visited_at=datetime.combine(day, time(10, 0), settings.zone))
    )  # fmt: skip


def duty(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = client.get("/api/v1/shops/visit-duty", headers=headers,
                        params={"from": "2026-11-09", "to": "2026-11-22", **params})  # fmt: skip
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.time_machine("2026-11-25T10:00:00+08:00")  # both weeks are over
def test_two_weeks_of_visits_per_shop_per_chief_and_per_street(
    client: TestClient, as_user: Headers, session: Session, settings: Settings
) -> None:
    chief, leader = as_user("demo-chief-2"), as_user("demo-dispatcher")
    theirs = duty(client, leader, chief="demo-chief-2")["shops"]
    ours = theirs[0]["segment_code"]  # a trunk segment of 文博路街道
    a, b = session.scalars(
        select(Shop).where(Shop.code.in_([s["shop_code"] for s in theirs
                                          if s["segment_code"] == ours][:2])).order_by(Shop.code)
    ).all()  # fmt: skip
    visited(client, chief, session, settings, a, date(2026, 11, 10))
    visited(client, as_user("demo-chief-1"), session, settings, b, date(2026, 11, 12))

    report = duty(client, leader, segment=ours)
    assert report["visits_per_week"] == 1
    rows = {s["shop_code"]: s for s in report["shops"]}
    assert rows[a.code]["chief_username"] == "demo-chief-2"
    assert (rows[a.code]["weeks"], rows[a.code]["met"], rows[a.code]["rate"]) == (2, 1, 0.5)
    assert rows[a.code]["missed"] == [
        {"start": "2026-11-16", "end": "2026-11-22", "visits": 0, "required": 1}
    ]
    assert rows[a.code]["last_visited_at"].startswith("2026-11-10T10:00:00+08:00")
    assert rows[b.code]["met"] == 1  # visited, if not by its own chief
    untouched = [s for code, s in rows.items() if code not in (a.code, b.code)]
    assert all(s["met"] == 0 and s["last_visited_at"] is None for s in untouched)

    [mine] = duty(client, leader, segment=ours, chief="demo-chief-2")["chiefs"]
    assert (mine["username"], mine["chief_level"]) == ("demo-chief-2", 2)
    assert (mine["shops"], mine["shop_weeks"], mine["met"]) == (len(rows), 2 * len(rows), 1)
    assert f"{b.code}@2026-11-09" in mine["missed"]
    assert f"{a.code}@2026-11-09" not in mine["missed"]
    [street] = report["streets"]
    assert (street["shops"], street["shop_weeks"], street["met"]) == (len(rows), 2 * len(rows), 2)


def test_a_bad_range_is_refused(client: TestClient, as_user: Headers) -> None:
    inverted = {"from": "2026-11-22", "to": "2026-11-09"}
    answer = client.get("/api/v1/shops/visit-duty", params=inverted,
                        headers=as_user("demo-dispatcher"))  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (422, "bad_date_range")
