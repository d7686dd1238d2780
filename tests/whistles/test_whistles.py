"""路长吹哨、部门报到: a road chief summons departments; who came, when, and who did not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.accounts.models import SegmentChief
from app.accounts.service import user_by_username
from app.audit.models import AuditEvent, AuditEventType
from app.core.database import utcnow
from app.core.idempotency import IdempotencyRecord
from app.territory.models import RoadSegment
from app.whistles.models import Whistle, WhistleSummons
from tests.support import Headers
from tests.support.places import Spot, on_segment
from tests.support.whistles import WHISTLES, blow, report_in, whistle_body

USERS = "/api/v1/admin/users"


def statuses(whistle: dict[str, Any]) -> dict[str, str]:
    return {s["unit"]["code"]: s["status"] for s in whistle["summonses"]}


def test_chief_whistles_and_departments_report_in_on_site(
    client: TestClient, as_user: Headers, spot: Spot, staff: Callable[[str], str]
) -> None:
    whistle = blow(client, as_user, spot, report_in_minutes=20)

    assert whistle["segment_code"] == spot.segment_code
    assert whistle["blown_by"]["display_name"] == "三级路长（文博社区）"
    assert whistle["category_name"] == "道路积水、雨污水管网破损"
    assert statuses(whistle) == {"urban-management": "waiting", "traffic-police-5": "waiting"}
    assert whistle["blown_at"].endswith("+08:00")
    due = whistle["report_in_due_at"]
    assert due > whistle["blown_at"]

    lon, lat = spot.moved(40)
    came = report_in(client, as_user("demo-staff"), whistle["id"], lon, lat, note="已到场")
    assert came.status_code == 200, came.text
    record = next(s for s in came.json()["summonses"] if s["unit"]["code"] == "urban-management")
    assert record["status"] == "on_time"
    assert record["reported_by"]["display_name"] == "区城管局工作人员"
    assert 35 < record["distance_m"] < 45
    assert record["note"] == "已到场"
    assert came.json()["counts"] == {"waiting": 1, "on_time": 1, "late": 0, "missed": 0}

    twice = report_in(client, as_user("demo-staff"), whistle["id"], lon, lat)
    assert (twice.status_code, twice.json()["code"]) == (409, "already_reported_in")

    # The staff list shows the whistles that summon their unit.
    police = as_user(staff("traffic-police-5"))
    listed = client.get(WHISTLES, headers=police).json()["items"]
    assert [w["id"] for w in listed] == [whistle["id"]]


def test_the_record_shows_who_did_not_come_and_who_came_late(
    client: TestClient, as_user: Headers, spot: Spot, session: Session, staff: Callable[[str], str]
) -> None:
    whistle = blow(client, as_user, spot)
    report_in(client, as_user("demo-staff"), whistle["id"], spot.lon, spot.lat)
    # Half an hour and more passes.
    session.execute(
        update(Whistle)
        .where(Whistle.id == whistle["id"])
        .values(report_in_due_at=utcnow() - timedelta(minutes=1))
    )
    session.execute(
        update(WhistleSummons)
        .where(WhistleSummons.whistle_id == whistle["id"], WhistleSummons.reported_at.isnot(None))
        .values(reported_at=utcnow() - timedelta(minutes=5))
    )
    session.commit()
    session.expire_all()

    now = client.get(f"{WHISTLES}/{whistle['id']}").json()
    assert statuses(now) == {"urban-management": "on_time", "traffic-police-5": "missed"}

    late = report_in(client, as_user(staff("traffic-police-5")), whistle["id"], spot.lon, spot.lat)
    assert late.status_code == 200
    assert statuses(late.json()) == {"urban-management": "on_time", "traffic-police-5": "late"}
    assert late.json()["counts"]["late"] == 1


def test_a_retried_whistle_is_one_whistle(
    client: TestClient, as_user: Headers, spot: Spot, session: Session
) -> None:
    headers = {**as_user("demo-chief-3"), "Idempotency-Key": "b8e0c7d2-whistle-0001"}
    first = client.post(WHISTLES, json=whistle_body(spot), headers=headers)
    retry = client.post(WHISTLES, json=whistle_body(spot), headers=headers)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    count = session.scalar(select(func.count()).select_from(Whistle))
    assert count == 1

    changed = client.post(
        WHISTLES, json=whistle_body(spot, description="另一件事"), headers=headers
    )
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    assert session.scalar(select(func.count()).select_from(Whistle)) == 1
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_who_may_blow_where(
    client: TestClient, as_user: Headers, spot: Spot, session: Session
) -> None:
    elsewhere = on_segment(session, chief="demo-chief-1")
    cases = [
        ("demo-patroller", whistle_body(spot), 403, "forbidden"),
        ("demo-staff", whistle_body(spot), 403, "forbidden"),
        ("demo-chief-3", whistle_body(elsewhere), 403, "not_your_segment"),
        ("demo-chief-3", whistle_body(spot, lon=spot.moved(500)[0]), 422, "place_off_segment"),
        ("demo-chief-3", whistle_body(spot, unit_codes=["sewer-ghosts"]), 422, "unknown_unit"),
        (
            "demo-chief-3",
            whistle_body(spot, unit_codes=["command-centre"]),
            422,
            "unit_not_summonable",
        ),
        ("demo-chief-3", whistle_body(spot, unit_codes=[]), 422, "validation_failed"),
        ("demo-chief-3", whistle_body(spot, category_code="roads"), 422, "category_is_group"),
        ("demo-chief-3", whistle_body(spot, category_code="roads.x"), 422, "unknown_category"),
        ("demo-chief-3", whistle_body(spot, lon=121.47, lat=31.23), 422, "outside_service_area"),
        ("demo-chief-3", whistle_body(spot, report_in_minutes=1), 422, "validation_failed"),
    ]
    for who, body, status, problem in cases:
        response = client.post(WHISTLES, json=body, headers=as_user(who))
        assert (response.status_code, response.json()["code"]) == (status, problem), (who, body)
    assert session.scalar(select(func.count()).select_from(Whistle)) == 0


def test_only_the_summoned_units_own_staff_report_in_and_only_near_the_place(
    client: TestClient, as_user: Headers, spot: Spot, staff: Callable[[str], str]
) -> None:
    whistle = blow(client, as_user, spot)
    wid = whistle["id"]
    me = as_user("demo-staff")

    other_unit = report_in(client, me, wid, spot.lon, spot.lat, unit_code="traffic-police-5")
    assert (other_unit.status_code, other_unit.json()["code"]) == (403, "forbidden")
    far = report_in(client, me, wid, *spot.moved(400))
    assert (far.status_code, far.json()["code"]) == (422, "too_far_from_place")
    assert far.json()["distance_m"] > 350
    health = report_in(client, as_user(staff("health")), wid, spot.lon, spot.lat)
    assert (health.status_code, health.json()["code"]) == (403, "not_summoned")
    chief = report_in(client, as_user("demo-chief-3"), wid, spot.lon, spot.lat)
    assert (chief.status_code, chief.json()["code"]) == (403, "forbidden")
    missing = report_in(client, me, 999_999, spot.lon, spot.lat)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")

    assert statuses(client.get(f"{WHISTLES}/{wid}").json())["urban-management"] == "waiting"


def test_whistles_are_seen_within_scope(
    client: TestClient, as_user: Headers, spot: Spot, session: Session
) -> None:
    whistle = blow(client, as_user, spot)
    url = f"{WHISTLES}/{whistle['id']}"

    for who in ("demo-chief-2", "demo-supervisor", "demo-assessor", "demo-dispatcher"):
        assert client.get(url, headers=as_user(who)).status_code == 200, who
    # demo-chief-1's scope is the district, so they see it too; a chief of another
    # street would not: move the whistle out of sight of demo-chief-2's street.
    session.execute(
        update(Whistle)
        .where(Whistle.id == whistle["id"])
        .values(jurisdiction_path="/410199/410199002/")
    )
    session.commit()
    hidden = client.get(url, headers=as_user("demo-chief-2"))
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert client.get(WHISTLES, headers=as_user("demo-chief-2")).json()["items"] == []


# Mid-morning: the half hour to report in ends the same day, so the message gives the time
# alone (after 23:30 Beijing time it would name the next day too).
@pytest.mark.time_machine("2026-11-18T10:00:00+08:00")
def test_a_whistle_alone_tells_each_summoned_unit_to_report_in(
    client: TestClient, as_user: Headers, spot: Spot, staff: Callable[[str], str]
) -> None:
    """No case is opened, but the summoned units have half an hour: each unit's staff gets
    a message naming the whistle and the time, and webhooks get `whistle.blown`."""
    police = staff("traffic-police-5")
    hook = client.post(
        "/api/v1/admin/webhooks",
        json={"name": "城市运行中心", "url": "https://101.6.6.6/roadchief",
              "event_types": ["whistle.blown"]},
        headers=as_user("demo-admin"),
    )  # fmt: skip
    assert hook.status_code == 201, hook.text
    whistle = blow(client, as_user, spot, report_in_minutes=30)
    due = whistle["report_in_due_at"][11:16]
    for who in ("demo-staff", police):
        inbox = client.get("/api/v1/inbox", headers=as_user(who)).json()["items"]
        [message] = [m for m in inbox if m["whistle_id"] == whistle["id"]]
        assert message["kind"] == "whistle_summoned"
        assert message["case_number"] is None
        assert message["title"].startswith(f"路长吹哨：请于 {due} 前到")
        assert message["body"] == whistle_body(spot)["description"]
    chief_inbox = client.get("/api/v1/inbox", headers=as_user("demo-chief-3")).json()["items"]
    assert [m for m in chief_inbox if m["whistle_id"] == whistle["id"]] == []
    [delivery] = client.get(
        f"/api/v1/admin/webhooks/{hook.json()['id']}/deliveries", headers=as_user("demo-admin")
    ).json()["items"]
    assert delivery["event_type"] == "whistle.blown"


def test_a_whistle_that_opens_a_case_tells_each_unit_once(
    client: TestClient, as_user: Headers, spot: Spot, staff: Callable[[str], str]
) -> None:
    police = staff("traffic-police-5")
    whistle = blow(client, as_user, spot, open_case=True)
    for who in ("demo-staff", police):
        inbox = client.get("/api/v1/inbox", headers=as_user(who)).json()["items"]
        about = [m for m in inbox if m["case_number"] == whistle["case_number"]]
        assert [m["kind"] for m in about] == ["whistle_summoned"]
        assert about[0]["title"].endswith(f"（案件 {whistle['case_number']}）")


def test_a_chief_moved_to_another_area_blows_no_whistle_on_the_old_roads(
    client: TestClient, as_user: Headers, spot: Spot, session: Session
) -> None:
    chief = user_by_username(session, "demo-chief-3")
    owned = client.get(f"{USERS}/{chief.id}/segments").json()
    assert spot.segment_code in {s["code"] for s in owned}

    # Widened to the whole street: the lanes are still in scope and stay theirs.
    wider = client.patch(f"{USERS}/{chief.id}", json={"jurisdiction_codes": ["410199001"]})
    assert wider.status_code == 200
    assert client.get(f"{USERS}/{chief.id}/segments").json() == owned

    # Moved to a community of another street: the old lanes are given up.
    moved = client.patch(f"{USERS}/{chief.id}", json={"jurisdiction_codes": ["410199002001"]})
    assert moved.status_code == 200
    assert client.get(f"{USERS}/{chief.id}/segments").json() == []
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.event == AuditEventType.SEGMENTS_CHANGED,
            AuditEvent.subject_user_id == chief.id,
            AuditEvent.actor_user_id.is_not(None),  # not the demo loader's
        )
    ).all()
    assert event.detail["reason"] == "scope_changed"
    assert event.detail["before"] == [s["code"] for s in owned]
    assert event.detail["after"] == []

    response = client.post(WHISTLES, json=whistle_body(spot), headers=as_user("demo-chief-3"))
    assert (response.status_code, response.json()["code"]) == (403, "not_your_segment")
    assert session.scalar(select(func.count()).select_from(Whistle)) == 0


def test_a_segment_outside_the_chiefs_scope_is_not_theirs_to_whistle_on(
    client: TestClient, as_user: Headers, session: Session
) -> None:
    far = on_segment(session, street="410199003")  # 同乐街道; demo-chief-3 is in 文博社区
    segment_id = session.scalar(select(RoadSegment.id).where(RoadSegment.code == far.segment_code))
    chief = user_by_username(session, "demo-chief-3")
    # A link stored before links had to lie in the chief's scope (or written by hand).
    session.execute(insert(SegmentChief).values(segment_id=segment_id, level=3, user_id=chief.id))
    session.commit()

    response = client.post(WHISTLES, json=whistle_body(far), headers=as_user("demo-chief-3"))
    assert (response.status_code, response.json()["code"]) == (403, "not_your_segment")
    assert session.scalar(select(func.count()).select_from(Whistle)) == 0
