"""Who must act: the centre asks where a report would go, admins change the tables.

The demo deployment has the shipped taxonomy, Huiji's table active (v1) and Dengfeng's
as a draft (v2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.rules import SYSTEM
from app.routing.models import RoutingDecision, RuleSet, RuleSetStatus
from app.routing.schemas import RouteRequest
from app.routing.service import decide, record_decision
from app.routing.shipped import SHIPPED_RULE_SETS, shipped_rule_set, shipped_taxonomy
from app.settings import Settings
from app.territory.models import AssetType, RoadGrade
from tests.support.places import Spot, asset_owned_by, on_segment

DRY_RUN = "/api/v1/routing/dry-run"
ADMIN = "/api/v1/admin/routing"
HUIJI, DENGFENG = (shipped_rule_set(p) for p in SHIPPED_RULE_SETS)


def route(client: TestClient, spot: Spot, category: str, **more: Any) -> dict[str, Any]:
    body = {"category_code": category, "lon": spot.lon, "lat": spot.lat, **more}
    response = client.post(DRY_RUN, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def leads(decision: dict[str, Any]) -> list[str]:
    return [u["code"] for u in decision["lead_units"]]


def cooperating(decision: dict[str, Any]) -> list[str]:
    return [u["code"] for u in decision["cooperating_units"]]


def active_version(session: Session) -> int | None:
    return session.scalar(select(RuleSet.version).where(RuleSet.status == RuleSetStatus.ACTIVE))


def test_the_taxonomy_covers_the_patrol_work_items_of_both_plans(
    client: TestClient, as_user: Callable[[str], dict[str, str]]
) -> None:
    response = client.get("/api/v1/categories", headers=as_user("demo-chief-3"))
    assert response.status_code == 200
    categories = {c["code"]: c for c in response.json()["categories"]}
    for code in (
        "roads.surface", "roads.pavement", "roads.manhole", "roads.overhead_cables",
        "roads.waterlogging", "roads.hoarding", "roads.illegal_construction", "roads.bollards",
        "roads.ground_locks", "order.street_vending", "order.shop_overflow",
        "order.motor_parking", "order.bike_parking", "clean.street_cleaning",
        "clean.dead_corner", "clean.river", "clean.black_odorous_water", "clean.garbage_sorting",
        "clean.public_toilet", "clean.facade", "clean.illegal_ads", "clean.flyers",
        "clean.construction_dust", "clean.construction_waste", "order.muck_trucks",
        "clean.restaurant_fumes", "lighting.street_lamp", "lighting.night_scene",
        "greenery.road_greenery", "greenery.park", "civility.public_behaviour",
    ):  # fmt: skip
        assert code in categories, code
        assert not categories[code]["is_group"]
    manhole = categories["roads.manhole"]
    assert manhole["parent_code"] == "roads"
    assert manhole["default_urgency"] == "critical"
    assert manhole["asset_types"] == ["manhole_cover"]
    assert manhole["national"] == {
        "kind": "component",
        "major": "公用设施",
        "minor": "井盖",
        "major_code": None,
        "minor_code": None,
    }
    # Inherited from the taxonomy's defaults, overridden where the category says so.
    assert manhole["time_limits"]["normal"] == {"sign_for": 2, "handle": 24, "verify": 8}
    vending = client.get("/api/v1/categories/order.street_vending").json()
    assert vending["time_limits"]["normal"] == {"sign_for": 1, "handle": 4, "verify": 4}
    assert vending["national"]["kind"] == "event"
    # Parents come before their children.
    order = list(categories)
    assert order.index("roads") < order.index("roads.manhole")


def test_the_same_report_goes_to_different_departments_in_huiji_and_dengfeng(
    client: TestClient, session: Session
) -> None:
    spot = on_segment(session, grade=RoadGrade.BACK_LANE)

    huiji = route(client, spot, "clean.dead_corner")
    dengfeng = route(client, spot, "clean.dead_corner", rule_set_version=2)
    assert (huiji["rule_set_version"], leads(huiji)) == (1, ["urban-management"])
    assert (dengfeng["rule_set_version"], leads(dengfeng)) == (2, ["health"])
    assert huiji["matched_rule"]["id"] == "H7"
    assert dengfeng["matched_rule"] == {"id": "D7", "item": "7. 城市卫生死角治理"}
    # The item's responsible units answer for it across the city; none gets this case.
    assert cooperating(huiji) == cooperating(dengfeng) == []
    assert any(
        line.startswith("该工作项的其他责任单位") and "区城管局" in line
        for line in dengfeng["explanation"]
    )

    assert leads(route(client, spot, "greenery.road_greenery")) == ["forestry-landscape"]
    dengfeng_green = route(client, spot, "greenery.road_greenery", rule_set_version=2)
    assert leads(dengfeng_green) == ["urban-management"]

    # Either way the street office where the point lies is the territorial owner (块).
    for decision in (huiji, dengfeng):
        assert decision["territorial_unit"]["code"] == f"street-{spot.street_code}"
        assert decision["territorial_unit"]["kind"] == "street_office"
        assert decision["basis"] == "rule"
        assert decision["id"] is None


def test_a_decision_names_the_facts_it_used(
    client: TestClient, session: Session, as_user: Callable[[str], dict[str, str]]
) -> None:
    spot = on_segment(session, chief="demo-chief-3")

    decision = route(client, spot, "roads.surface")

    facts = decision["facts"]
    assert facts["category_path"] == ["roads.surface", "roads"]
    assert facts["street"]["code"] == spot.street_code == "410199001"
    assert facts["community"]["code"].startswith("410199001")
    assert facts["grid_cell_code"]
    assert facts["segment"]["code"] == spot.segment_code
    assert facts["segment"]["distance_m"] < 1
    chiefs = {c["level"]: c["display_name"] for c in facts["segment"]["chiefs"]}
    assert chiefs[3] == "三级路长（文博社区）"
    assert chiefs[2] == "二级路长（文博路街道副主任）"
    assert facts["asset"] is None
    text = "\n".join(decision["explanation"])
    assert "三级路长 三级路长（文博社区）" in text
    assert "规则集 v1《惠济区城市精细化管理任务分工》：适用规则 H1" in text
    assert "属地：" in text
    # A road chief may ask as well: "where would my report go?"
    answer = client.post(
        DRY_RUN,
        json={"category_code": "roads.surface", "lon": spot.lon, "lat": spot.lat},
        headers=as_user("demo-chief-3"),
    )
    assert answer.status_code == 200
    assert leads(answer.json()) == ["urban-management"]


def test_a_gas_company_manhole_goes_to_the_gas_company(
    client: TestClient, session: Session
) -> None:
    code, lon, lat = asset_owned_by(session, AssetType.MANHOLE_COVER, "gas-company")
    spot = Spot("", lon, lat, "")

    decision = route(client, spot, "roads.manhole", asset_code=code)

    assert decision["basis"] == "asset_owner"
    assert leads(decision) == ["gas-company"]
    assert cooperating(decision)[0] == "urban-management"
    assert decision["facts"]["asset"]["code"] == code
    assert decision["facts"]["asset"]["owner_unit_code"] == "gas-company"
    assert decision["facts"]["nearby_assets"][0]["code"] == code  # 0 m away
    assert any("产权单位优先" in line for line in decision["explanation"])

    # The same manhole named on a street-vending report does not change who handles it.
    vending = route(client, spot, "order.street_vending", asset_code=code)
    assert (vending["basis"], leads(vending)) == ("rule", ["urban-management"])


def test_rules_limited_to_road_grades_and_streets(client: TestClient, session: Session) -> None:
    lane = on_segment(session, grade=RoadGrade.BACK_LANE)
    trunk = on_segment(session, grade=RoadGrade.TRUNK)
    document = HUIJI.model_dump(mode="json", exclude_none=True)
    document["name"] = "惠济区分工（背街小巷绿化属地管理）"
    document["rules"] += [
        {
            "id": "green-trunk",
            "categories": ["greenery.road_greenery"],
            "lead": ["forestry-landscape"],
            "when": {"road_grades": ["trunk", "secondary"]},
        },
        {
            "id": "green-lanes",
            "categories": ["greenery.road_greenery"],
            "lead": ["territory"],
            "cooperating": ["forestry-landscape"],
            "when": {"road_grades": ["back_lane"]},
        },
        {
            "id": "clean-410199002",
            "categories": ["clean.street_cleaning"],
            "lead": ["territory"],
            "when": {"jurisdictions": ["410199002"]},
        },
    ]
    uploaded = client.post(f"{ADMIN}/rule-sets", params={"activate": True}, json=document)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["status"] == "active"

    on_lane = route(client, lane, "greenery.road_greenery")
    assert leads(on_lane) == [f"street-{lane.street_code}"]
    assert cooperating(on_lane) == ["forestry-landscape"]
    assert on_lane["matched_rule"]["id"] == "green-lanes"
    assert route(client, trunk, "greenery.road_greenery")["matched_rule"]["id"] == "green-trunk"

    in_002 = on_segment(session, street="410199002")
    in_001 = on_segment(session, street="410199001")
    assert leads(route(client, in_002, "clean.street_cleaning")) == ["street-410199002"]
    assert leads(route(client, in_001, "clean.street_cleaning")) == ["urban-management"]


def test_activation_and_rollback_leave_old_decisions_on_their_version(
    client: TestClient, session: Session, settings: Settings
) -> None:
    spot = on_segment(session, grade=RoadGrade.SECONDARY)
    request = RouteRequest(category_code="clean.dead_corner", lon=spot.lon, lat=spot.lat)
    stored = record_decision(session, SYSTEM, decide(session, SYSTEM, settings, request))
    session.commit()

    activated = client.post(f"{ADMIN}/rule-sets/2/activate", json={"reason": "改用登封分工"})
    assert activated.status_code == 200, activated.text
    assert active_version(session) == 2
    assert leads(route(client, spot, "clean.dead_corner")) == ["health"]
    again = client.post(f"{ADMIN}/rule-sets/2/activate", json={})
    assert (again.status_code, again.json()["code"]) == (409, "rule_set_already_active")

    old = client.get(f"/api/v1/routing/decisions/{stored.id}").json()
    assert (old["rule_set_version"], leads(old)) == (1, ["urban-management"])
    assert old["facts"]["segment"]["code"] == spot.segment_code

    rolled = client.post(f"{ADMIN}/rule-sets/rollback", json={"reason": "登封分工不适用"})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1
    assert active_version(session) == 1
    assert leads(route(client, spot, "clean.dead_corner")) == ["urban-management"]
    versions = {r["version"]: r["status"] for r in client.get("/api/v1/routing/rule-sets").json()}
    assert versions == {1: "active", 2: "retired"}
    nothing = client.post(f"{ADMIN}/rule-sets/rollback", json={})
    assert (nothing.status_code, nothing.json()["code"]) == (409, "nothing_to_roll_back")
    events = client.get("/api/v1/admin/audit-events", params={"event": "rule_set_activated"})
    assert [e["detail"]["version"] for e in events.json()["items"]][:2] == [1, 2]


def test_a_bad_table_is_refused_whole_with_every_problem_named(
    client: TestClient, session: Session
) -> None:
    document = HUIJI.model_dump(mode="json", exclude_none=True)
    rules = document["rules"]
    rules[0]["lead"] = ["urban-management-bureau"]  # no such unit
    rules[1]["categories"].append("roads.teleporter")  # no such category
    del rules[[r["id"] for r in rules].index("H22")]  # civility.public_behaviour unrouted
    rules.append({**rules[2], "id": "H3-again"})  # shadowed by H3
    rules.append(
        {
            "id": "x",
            "categories": ["clean.river"],
            "lead": ["health"],
            "when": {"jurisdictions": ["999"]},
        }
    )
    before = session.scalar(select(func.count()).select_from(RuleSet))

    response = client.post(f"{ADMIN}/rule-sets", params={"activate": True}, json=document)

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "rule_set_invalid"
    found = {(e["code"], tuple(e["loc"])) for e in problem["errors"]}
    assert ("unknown_unit", ("rules", 0, "lead", 0)) in found
    assert ("unknown_category", ("rules", 1, "categories", 2)) in found
    assert ("category_not_covered", ("rules",)) in found
    assert ("unreachable_rule", ("rules", len(rules) - 2)) in found
    assert ("unknown_jurisdiction", ("rules", len(rules) - 1, "when", "jurisdictions", 0)) in found
    assert any("civility.public_behaviour" in e["message"] for e in problem["errors"])
    assert session.scalar(select(func.count()).select_from(RuleSet)) == before
    assert active_version(session) == 1

    check = client.post(f"{ADMIN}/rule-sets/validate", json=document).json()
    assert check["valid"] is False
    assert {(e["code"], tuple(e["loc"])) for e in check["errors"]} == found
    good = client.post(f"{ADMIN}/rule-sets/validate", json=DENGFENG.model_dump(mode="json"))
    assert good.json() == {"valid": True, "errors": []}


def test_only_admins_change_the_tables(
    client: TestClient, as_user: Callable[[str], dict[str, str]]
) -> None:
    document = DENGFENG.model_dump(mode="json")
    for who in ("demo-dispatcher", "demo-assessor", "demo-chief-1"):
        refused = client.post(f"{ADMIN}/rule-sets", json=document, headers=as_user(who))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        read = client.get("/api/v1/routing/rule-sets/active", headers=as_user(who))
        assert read.json()["version"] == 1


def test_what_no_rule_covers_goes_to_the_command_centre(
    client: TestClient, session: Session
) -> None:
    taxonomy = shipped_taxonomy().model_dump(mode="json", exclude_none=True)
    other = next(c for c in taxonomy["categories"] if c["code"] == "other")
    other["children"].append(
        {"code": "other.drone", "name": "无人机违规飞行", "name_en": "Drone flown illegally"}
    )
    imported = client.put(f"{ADMIN}/taxonomy", json=taxonomy)
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 1
    assert imported.json()["uncovered"] == ["other.drone"]

    decision = route(client, on_segment(session), "other.drone")

    assert (decision["basis"], leads(decision)) == ("fallback", ["command-centre"])
    assert decision["matched_rule"] is None
    assert any("没有适用的规则" in line for line in decision["explanation"])


def test_a_taxonomy_that_drops_a_category_keeps_it_for_old_cases(
    client: TestClient, session: Session
) -> None:
    taxonomy = shipped_taxonomy().model_dump(mode="json", exclude_none=True)
    civility = next(c for c in taxonomy["categories"] if c["code"] == "civility")
    civility["children"] = [
        c for c in civility["children"] if c["code"] != "civility.traffic_behaviour"
    ]

    result = client.put(f"{ADMIN}/taxonomy", json=taxonomy).json()

    assert result["deactivated"] == 1
    codes = [c["code"] for c in client.get("/api/v1/categories").json()["categories"]]
    assert "civility.traffic_behaviour" not in codes
    everything = client.get("/api/v1/categories", params={"include_inactive": True}).json()
    dropped = next(c for c in everything["categories"] if c["code"] == "civility.traffic_behaviour")
    assert dropped["active"] is False
    refused = client.post(
        DRY_RUN,
        json={"category_code": "civility.traffic_behaviour", "lon": 113.62, "lat": 34.81},
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "unknown_category")


def test_a_bad_taxonomy_is_refused_whole(client: TestClient, session: Session) -> None:
    taxonomy = shipped_taxonomy().model_dump(mode="json", exclude_none=True)
    taxonomy["categories"][0]["children"][0]["code"] = "order.pothole"  # not under "roads"
    taxonomy["categories"][1]["children"].append(dict(taxonomy["categories"][1]["children"][0]))

    response = client.put(f"{ADMIN}/taxonomy", json=taxonomy)

    assert response.status_code == 422
    assert {e["code"] for e in response.json()["errors"]} == {
        "code_not_under_parent",
        "duplicate_code",
    }
    assert client.get("/api/v1/categories/roads.surface").status_code == 200


def test_bad_routing_requests_get_a_specific_problem(client: TestClient, session: Session) -> None:
    spot = on_segment(session)
    code, lon, lat = asset_owned_by(session, AssetType.MANHOLE_COVER, "water-company")
    cases = [
        ({"category_code": "roads.nope"}, 422, "unknown_category"),
        ({"category_code": "roads"}, 422, "category_is_group"),
        ({"category_code": "Roads!"}, 422, "validation_failed"),
        ({"lon": 116.39, "lat": 39.91}, 422, "outside_service_area"),
        ({"lon": 200.0}, 422, "invalid_location"),
        ({"asset_code": "MH-NONE-1"}, 422, "unknown_asset"),
        ({"asset_code": code, "lon": lon + 0.01, "lat": lat}, 422, "asset_too_far"),
        ({"rule_set_version": 99}, 404, "not_found"),
    ]
    for change, status, problem in cases:
        body = {"category_code": "roads.manhole", "lon": spot.lon, "lat": spot.lat, **change}
        response = client.post(DRY_RUN, json=body)
        assert (response.status_code, response.json()["code"]) == (status, problem), change
    assert session.scalar(select(func.count()).select_from(RoutingDecision)) == 0
