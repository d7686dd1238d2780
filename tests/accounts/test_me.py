"""`GET /me` is compact (the phone asks at every start); a chief's segments come in pages."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import SegmentChief, User
from app.territory.models import RoadSegment
from tests.support import Headers


def test_a_chiefs_segments_come_in_pages_and_me_only_counts_them(
    anonymous: TestClient, as_user: Headers, session: Session
) -> None:
    chief = as_user("demo-chief-2")
    me = anonymous.get("/api/v1/me", headers=chief).json()
    assert "segments" not in me
    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = anonymous.get("/api/v1/me/segments", params=params, headers=chief).json()
        assert len(page["items"]) <= 100
        codes += [s["code"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # The naive second computation: the chief's rows, straight from the table.
    owned = session.scalars(
        select(RoadSegment.code)
        .join(SegmentChief, SegmentChief.segment_id == RoadSegment.id)
        .join(User, SegmentChief.user_id == User.id)
        .where(User.username == "demo-chief-2")
    ).all()
    assert len(owned) > 200  # the heavy case of issue 18: hundreds of segments
    assert codes == sorted(owned)
    assert me["segment_count"] == len(owned)


def test_segments_are_only_ever_the_callers_own(anonymous: TestClient, as_user: Headers) -> None:
    assert anonymous.get("/api/v1/me/segments").status_code == 401
    patroller = as_user("demo-patroller")
    assert anonymous.get("/api/v1/me/segments", headers=patroller).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert anonymous.get("/api/v1/me", headers=patroller).json()["segment_count"] == 0
    # Another chief's cursor only moves along the caller's own list.
    other = anonymous.get(
        "/api/v1/me/segments", params={"limit": 1}, headers=as_user("demo-chief-2")
    ).json()
    mine = anonymous.get(
        "/api/v1/me/segments",
        params={"limit": 1000, "cursor": other["next_cursor"]},
        headers=as_user("demo-chief-3"),
    ).json()
    own = anonymous.get(
        "/api/v1/me/segments", params={"limit": 1000}, headers=as_user("demo-chief-3")
    ).json()
    assert {s["code"] for s in mine["items"]} <= {s["code"] for s in own["items"]}
    bad = anonymous.get("/api/v1/me/segments", params={"cursor": "not-a-cursor"}, headers=patroller)
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")
