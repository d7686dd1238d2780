"""The centre sees what the routing proposes before it registers a case, and accepts it in
one step; nobody else sees the decision (issue 16, item 6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import multipart, report_body


def codes(units: list[dict[str, Any]]) -> list[str]:
    return [u["code"] for u in units]


def scoped_user(session: Session, settings: Settings, role: Role, street: str, **more: Any) -> str:
    username = f"{role.value}-{street}"
    create_user(
        session,
        settings,
        None,
        UserCreate(
            username=username,
            display_name=f"{street} {role.value}",
            password="Scoped@2026-long",
            roles=[role],
            jurisdiction_codes=[street],
            **more,
        ),
    )
    return username


def test_a_case_awaiting_registration_shows_the_centre_its_routing(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = phone("demo-chief-3")
    body = report_body(spot, category_code="order.street_vending", description="占道经营")
    number = multipart(chief, body, [good_jpeg()]).json()["case_number"]
    dispatcher = as_user("demo-dispatcher")

    case = chief.get(f"/api/v1/cases/{number}", headers=dispatcher).json()

    assert case["status"] == "pending_registration"
    routing = case["routing"]
    street_office = f"street-{spot.street_code}"
    assert codes(routing["lead_units"]) == ["urban-management"]
    assert codes(routing["cooperating_units"]) == [street_office]
    assert routing["territorial_unit"]["code"] == street_office
    assert routing["matched_rule"] == {"id": "H3", "item": "3. 占道（突店）经营整治"}
    assert (routing["rule_set_version"], routing["basis"]) == (1, "rule")
    assert "牵头：区城管局" in routing["explanation"]
    assert any("区市场监督管理局" in line for line in routing["explanation"])  # not tasked
    # The id is the stored decision's, with its facts.
    stored = chief.get(f"/api/v1/routing/decisions/{routing['id']}", headers=dispatcher).json()
    assert stored["facts"]["segment"]["code"] == spot.segment_code
    assert {k: stored[k] for k in routing} == routing

    # The queue carries the same proposal; accepting it is one dispatch without units.
    queue = chief.get(
        "/api/v1/queues/dispatch", params={"stage": "register"}, headers=dispatcher
    ).json()
    item = next(i for i in queue["items"] if i["number"] == number)
    assert item["routing"] == routing
    loop = Loop(chief, as_user, number)
    loop.ok("demo-dispatcher", "register")
    item = chief.get(
        "/api/v1/queues/dispatch", params={"stage": "dispatch"}, headers=dispatcher
    ).json()["items"][0]
    accepted = chief.post(
        f"/api/v1/cases/{number}/actions/dispatch",
        json={"version": item["version"]},
        headers=dispatcher,
    )
    assert accepted.status_code == 200, accepted.text
    tasks = [(t["unit"]["code"], t["is_lead"]) for t in accepted.json()["tasks"]]
    assert tasks == [("urban-management", True), (street_office, False)]
    assert accepted.json()["routing"] == routing  # the decision stays what it was


def test_only_the_centre_sees_the_decision_and_only_in_its_scope(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
    outsider: str,
    app: FastAPI,
) -> None:
    chief = phone("demo-chief-3")
    body = report_body(spot, category_code="order.street_vending", description="占道经营")
    number = multipart(chief, body, [good_jpeg()]).json()["case_number"]
    case_url = f"/api/v1/cases/{number}"
    decision_id = chief.get(case_url, headers=as_user("demo-dispatcher")).json()["routing"]["id"]
    loop = Loop(chief, as_user, number)
    loop.ok("demo-dispatcher", "register")
    loop.ok("demo-dispatcher", "dispatch")
    office = f"street-{spot.street_code}"
    own_street_staff = scoped_user(
        session, settings, Role.DEPARTMENT_STAFF, spot.street_code, unit_code=office
    )
    next_street = "410199002"
    assert spot.street_code != next_street
    other_dispatcher = scoped_user(session, settings, Role.DISPATCHER, next_street)
    other_staff = scoped_user(
        session, settings, Role.DEPARTMENT_STAFF, next_street, unit_code=f"street-{next_street}"
    )

    # Who may see the case but not dispatch it: the reporter, the lead's staff, the
    # street office's staff (its unit has a task), a supervisor.
    for who in ("demo-chief-3", "demo-staff", own_street_staff, "demo-supervisor"):
        seen = chief.get(case_url, headers=as_user(who))
        assert seen.status_code == 200, who
        assert seen.json()["routing"] is None, who
    assert chief.get(case_url, headers=as_user("demo-admin")).json()["routing"]["id"] == decision_id

    # Another street: neither the case nor its decision exists for them.
    for who in (outsider, other_dispatcher, other_staff):
        refused = chief.get(case_url, headers=as_user(who))
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found"), who
        decision = chief.get(f"/api/v1/routing/decisions/{decision_id}", headers=as_user(who))
        assert (decision.status_code, decision.json()["code"]) == (404, "not_found"), who
    queue = chief.get("/api/v1/queues/dispatch", headers=as_user(other_dispatcher)).json()
    assert all(i["number"] != number for i in queue["items"])
    for who in ("demo-chief-3", "demo-staff", own_street_staff):
        denied = chief.get("/api/v1/queues/dispatch", headers=as_user(who))
        assert (denied.status_code, denied.json()["code"]) == (403, "forbidden"), who
    with TestClient(app) as nobody:
        for url in (
            case_url,
            "/api/v1/queues/dispatch",
            f"/api/v1/routing/decisions/{decision_id}",
        ):
            assert nobody.get(url).status_code == 401, url
