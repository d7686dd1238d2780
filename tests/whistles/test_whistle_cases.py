"""A whistle opens a case dispatched straight to the summoned departments, or joins an open
one; who reported in, and who did not, is written into the case's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.sweep import sweep
from app.settings import Settings
from app.whistles.models import Whistle
from tests.support import Headers
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.whistles import blow, report_in, whistle_body


def case(client: TestClient, as_user: Headers, number: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(
        f"/api/v1/cases/{number}", headers=as_user("demo-dispatcher")
    ).json()
    return found


def test_a_whistle_opens_a_case_the_summoned_units_must_handle(
    client: TestClient,
    as_user: Headers,
    spot: Spot,
    session: Session,
    settings: Settings,
) -> None:
    whistle = blow(client, as_user, spot, open_case=True)
    number = whistle["case_number"]
    assert number is not None
    opened = case(client, as_user, number)
    assert opened["status"] == "dispatched"
    assert [(t["unit"]["code"], t["is_lead"]) for t in opened["tasks"]] == [
        ("urban-management", True), ("traffic-police-5", False),
    ]  # fmt: skip
    assert opened["tasks"][0]["handle_due_at"] is not None
    first = opened["history"][0]
    assert (first["kind"], first["to_status"], first["actor_role"]) == (
        "whistle_blown", "dispatched", "road_chief",
    )  # fmt: skip
    inbox = client.get("/api/v1/inbox", headers=as_user("demo-staff")).json()
    assert any(m["case_number"] == number and "吹哨" in m["title"] for m in inbox["items"])

    lon, lat = spot.moved(30)
    assert report_in(client, as_user("demo-staff"), whistle["id"], lon, lat).status_code == 200
    history = case(client, as_user, number)["history"]
    assert history[-1]["kind"] == "whistle_reported_in"
    assert history[-1]["lon"] is not None

    due = session.scalar(select(Whistle.report_in_due_at).where(Whistle.id == whistle["id"]))
    assert due is not None
    run = sweep(session, settings, now=due + timedelta(seconds=1))
    assert run.recorded == {"whistle_missed": 1}  # the traffic police never came
    assert sweep(session, settings, now=due + timedelta(seconds=1)).total == 0
    last = case(client, as_user, number)["history"][-1]
    assert last["kind"] == "whistle_missed"


def test_a_whistle_joins_an_open_case_but_not_a_finished_one(
    loop: Loop, client: TestClient, as_user: Headers, spot: Spot
) -> None:
    joined = blow(client, as_user, spot, case_number=loop.number)
    assert joined["case_number"] == loop.number
    history = case(client, as_user, loop.number)["history"]
    assert history[-1]["kind"] == "whistle_blown"
    assert history[-1]["to_status"] is None  # the case keeps its course

    loop.ok("demo-dispatcher", "reject", note="重复上报", reason="duplicate")
    refused = client.post(
        "/api/v1/whistles",
        json=whistle_body(spot, case_number=loop.number),
        headers=as_user("demo-chief-3"),
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "case_finished")
    both = client.post(
        "/api/v1/whistles",
        json=whistle_body(spot, case_number=loop.number, open_case=True),
        headers=as_user("demo-chief-3"),
    )
    assert (both.status_code, both.json()["code"]) == (422, "validation_failed")
