"""Who gets a task on one case: the units that must act on it, not every unit the plan
makes responsible for the work item (issue 16, item 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.access.rules import SYSTEM
from app.routing import shipped
from app.routing.shipped import (
    SHIPPED_RULE_SETS,
    SUPERSEDED_RULE_SETS,
    load_shipped_routing,
    shipped_rule_set,
)
from tests.support import Headers, Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload


def tasks(case: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(t["unit"]["code"], t["is_lead"]) for t in case["tasks"]]


def test_a_huiji_pothole_goes_to_the_lead_alone_and_needs_no_releases(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = phone("demo-chief-3")
    receipt = multipart(chief, report_body(spot), [good_jpeg()]).json()
    assert [u["code"] for u in receipt["lead_units"]] == ["urban-management"]
    assert receipt["cooperating_units"] == []
    loop = Loop(chief, as_user, receipt["case_number"])

    loop.ok("demo-dispatcher", "register")
    dispatched = loop.ok("demo-dispatcher", "dispatch")  # the routing's units, as proposed

    assert tasks(dispatched) == [("urban-management", True)]
    loop.ok("demo-staff", "sign_for")
    fix = upload(chief, good_jpeg(), headers=as_user("demo-staff"))["id"]
    fed_back = loop.ok("demo-staff", "feed_back", note="已修补坑洼", photo_ids=[fix])
    # Verification waits for nobody else: no cooperating unit had to be released.
    assert fed_back["status"] == "awaiting_verification"
    assert [e["kind"] for e in fed_back["history"]].count("released") == 0


def test_a_vending_case_also_reaches_the_street_office_where_the_plan_says_so(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = phone("demo-chief-3")
    body = report_body(spot, category_code="order.street_vending", description="占道经营")
    receipt = multipart(chief, body, [good_jpeg()]).json()
    loop = Loop(chief, as_user, receipt["case_number"])

    loop.ok("demo-dispatcher", "register")
    dispatched = loop.ok("demo-dispatcher", "dispatch")

    # 城管 leads; the street office joins by the plan's 区、镇（街道）、社区三级联动, and
    # 区市场监督管理局 (responsible for the work item) gets no task.
    street_office = f"street-{spot.street_code}"
    assert tasks(dispatched) == [("urban-management", True), (street_office, False)]
    assert receipt["territorial_unit"]["code"] == street_office


def test_the_tables_keep_each_work_items_responsible_units_as_data(
    client: TestClient, as_user: Headers
) -> None:
    for version, rule_id in ((1, "H1"), (2, "D1")):
        document = client.get(
            f"/api/v1/routing/rule-sets/{version}", headers=as_user("demo-assessor")
        ).json()["document"]
        roads = next(r for r in document["rules"] if r["id"] == rule_id)
        assert roads["lead"] == ["urban-management"]
        assert roads["cooperating"] == []
        assert "territory" in roads["responsible"]  # 各镇（街道） / 各办事处
        if version == 1:
            assert {"fire-rescue", "health", "police-dahelu"} <= set(roads["responsible"])
            assert len(roads["responsible"]) == 12
        else:
            assert {"power-company", "water-company", "telecom-china-mobile"} <= set(
                roads["responsible"]
            )


def test_a_responsible_unit_that_does_not_exist_is_refused(client: TestClient) -> None:
    document = client.get("/api/v1/routing/rule-sets/1").json()["document"]
    document["rules"][0]["responsible"].append("fire-brigade-of-nowhere")
    document["rules"][2]["responsible"].append(document["rules"][2]["lead"][0])

    response = client.post("/api/v1/admin/routing/rule-sets", json=document)

    assert response.status_code == 422
    found = {(e["code"], tuple(e["loc"])) for e in response.json()["errors"]}
    assert found == {
        ("unknown_unit", ("rules", 0, "responsible", 12)),
        (
            "unit_listed_twice",
            ("rules", 2, "responsible", len(document["rules"][2]["responsible"]) - 1),
        ),
    }


def test_a_deployment_still_on_the_first_edition_is_brought_up_to_date(
    client: TestClient,
    session: Session,
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
) -> None:
    # A city that loaded the first edition of both shipped tables (Huiji in force).
    for path in SHIPPED_RULE_SETS[::-1]:
        first_edition = shipped_rule_set(SUPERSEDED_RULE_SETS[path][0])
        uploaded = client.post(
            "/api/v1/admin/routing/rule-sets",
            params={"activate": True},
            json=first_edition.model_dump(mode="json", exclude_none=True),
        )
        assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["version"] == 4
    chief = phone("demo-chief-3")
    before = multipart(chief, report_body(spot), [good_jpeg()]).json()
    assert len(before["cooperating_units"]) == 11  # the first edition's twelve units

    done = load_shipped_routing(session, SYSTEM)

    # The current Huiji edition is stored already (v1): it is put back in force; the
    # current Dengfeng edition is stored too (v2): nothing is uploaded twice.
    assert done == ["rule set v1 惠济区城市精细化管理任务分工: active instead of v4"]
    active = client.get("/api/v1/routing/rule-sets/active").json()
    assert active["version"] == 1
    assert [r["version"] for r in client.get("/api/v1/routing/rule-sets").json()] == [4, 3, 2, 1]
    after = multipart(
        chief, report_body(spot, lon=spot.moved(60)[0], description="另一处坑洼"), [good_jpeg()]
    ).json()
    assert after["cooperating_units"] == []
    # The case routed before keeps its decision and its version.
    kept = chief.get(f"/api/v1/reports/{before['report_id']}").json()
    assert len(kept["cooperating_units"]) == 11
    assert load_shipped_routing(session, SYSTEM) == []


def test_a_new_edition_is_uploaded_and_put_in_force_where_its_predecessor_is(
    client: TestClient, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ship a third Huiji edition; the demo deployment runs the second (v1).
    third = shipped_rule_set(SHIPPED_RULE_SETS[0]).model_dump(mode="json", exclude_none=True)
    third["description"] += "（第三版）"
    path = tmp_path / "huiji-2019.yaml"
    path.write_text(yaml.safe_dump(third, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(shipped, "SHIPPED_RULE_SETS", (path,))
    monkeypatch.setattr(shipped, "SUPERSEDED_RULE_SETS", {path: (SHIPPED_RULE_SETS[0],)})

    done = load_shipped_routing(session, SYSTEM)

    assert done == [
        "rule set v3 惠济区城市精细化管理任务分工: current edition of huiji-2019.yaml",
        "rule set v3 惠济区城市精细化管理任务分工: active instead of v1",
    ]
    active = client.get("/api/v1/routing/rule-sets/active").json()
    assert (active["version"], active["document"]["description"]) == (3, third["description"])
    events = client.get("/api/v1/admin/audit-events", params={"event": "rule_set_activated"})
    assert "替换 v1" in events.json()["items"][0]["detail"]["reason"]
