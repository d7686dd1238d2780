"""A phone app built on Amap, Tencent or WeChat maps sends GCJ-02 points (火星坐标), some
570 m off the WGS 84 place here: every request that takes a point says which system it is
in, and is answered for the place it names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.workflow import Action
from app.core.coords import wgs84_to_gcj02
from app.core.database import utcnow
from app.core.geo import LocalFrame
from app.territory.models import Jurisdiction, Workstation
from tests.support import Headers
from tests.support.places import Spot
from tests.support.reports import report_body
from tests.support.shops import shop_of, visit_body

LOCATE = "/api/v1/territory/locate"
DRY_RUN = "/api/v1/routing/dry-run"
WHISTLES = "/api/v1/whistles"

#: Every operation that takes a point, found by walking the OpenAPI document.
POINT_OPERATIONS = {
    "GET /api/v1/territory/locate",
    "GET /api/v1/cases/nearby",
    "POST /api/v1/routing/dry-run",
    "POST /api/v1/reports",
    "POST /api/v1/whistles",
    "POST /api/v1/whistles/{whistle_id}/report-in",
    "POST /api/v1/patrols/{patrol_id}/fixes",
    "POST /api/v1/workstations/{code}/check-in",
    "POST /api/v1/workstations/{code}/check-out",
    "POST /api/v1/shops/{code}/visits",
    "POST /api/v1/assessment/inspections",
    "POST /api/v1/exchange/cases",
    # Every step of a case keeps where its actor stood.
    *(f"POST /api/v1/cases/{{number}}/actions/{action.value}" for action in Action),
}


def gcj(lon: float, lat: float) -> dict[str, Any]:
    """The point as a Chinese map SDK gives it, flagged so."""
    glon, glat = wgs84_to_gcj02(lon, lat)
    return {"lon": glon, "lat": glat, "coordinate_system": "gcj02"}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return LocalFrame(*a).distance_m(shapely.Point(*b))


def _point_holders(doc: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> Iterator[dict]:
    """Every object schema reachable from `schema` (refs resolved once each)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen.add(name)
        schema = doc["components"]["schemas"][name]
    if "properties" in schema:
        yield schema
        for sub in schema["properties"].values():
            yield from _point_holders(doc, sub, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _point_holders(doc, schema[key], seen)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            yield from _point_holders(doc, sub, seen)


def test_every_point_the_api_takes_says_its_coordinate_system(app: FastAPI) -> None:
    doc = app.openapi()
    flag = doc["components"]["schemas"]["CoordinateSystem"]
    assert flag["enum"] == ["wgs84", "gcj02"]
    found = set()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
            if {"lon", "lat"} <= query.keys():
                found.add(name)
                system = query.get("coordinate_system")
                assert system is not None, name
                assert system["schema"]["$ref"].endswith("/CoordinateSystem"), name
                assert "gcj02" in system["description"], name
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            for schema in _point_holders(doc, body["schema"], set()) if body else ():
                if {"lon", "lat"} <= schema["properties"].keys():
                    found.add(name)
                    system = schema["properties"].get("coordinate_system")
                    assert system is not None, name
                    assert system["$ref"].endswith("/CoordinateSystem"), name
                    assert "gcj02" in system["description"], name
    assert found == POINT_OPERATIONS


def test_locate_answers_for_the_place_a_chinese_map_names(client: TestClient, spot: Spot) -> None:
    here = client.get(LOCATE, params={"lon": spot.lon, "lat": spot.lat}).json()
    sent = gcj(spot.lon, spot.lat)

    there = client.get(LOCATE, params=sent)

    assert there.status_code == 200, there.text
    answer = there.json()
    assert metres((answer["lon"], answer["lat"]), (spot.lon, spot.lat)) < 0.01
    assert metres((sent["lon"], sent["lat"]), (spot.lon, spot.lat)) > 300  # what was ignored
    assert answer["jurisdictions"] == here["jurisdictions"]
    assert answer["grid_cell_code"] == here["grid_cell_code"]
    assert answer["segment"]["code"] == here["segment"]["code"] == spot.segment_code
    assert [a["code"] for a in answer["nearby_assets"]] == [
        a["code"] for a in here["nearby_assets"]
    ]
    for flag in ("bd09", "WGS84", ""):
        refused = client.get(LOCATE, params={**sent, "coordinate_system": flag})
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), flag
        assert refused.json()["errors"][0]["loc"] == ["query", "coordinate_system"]


def test_a_dry_run_routes_the_place_a_chinese_map_names(client: TestClient, spot: Spot) -> None:
    body = {"category_code": "roads.surface", "lon": spot.lon, "lat": spot.lat}
    here = client.post(DRY_RUN, json=body).json()

    there = client.post(DRY_RUN, json={**body, **gcj(spot.lon, spot.lat)})

    assert there.status_code == 200, there.text
    facts = there.json()["facts"]
    assert metres((facts["lon"], facts["lat"]), (spot.lon, spot.lat)) < 0.01
    assert facts["segment"]["code"] == here["facts"]["segment"]["code"] == spot.segment_code
    assert facts["grid_cell_code"] == here["facts"]["grid_cell_code"]
    assert there.json()["lead_units"] == here["lead_units"]


def test_a_whistle_and_its_report_in_from_a_chinese_map_app(
    client: TestClient, as_user: Headers, spot: Spot
) -> None:
    body = {
        "segment_code": spot.segment_code,
        "category_code": "roads.waterlogging",
        "description": "路口积水没过脚踝，需城管到场处置",
        "unit_codes": ["urban-management"],
    }
    chief = as_user("demo-chief-3")
    raw = {k: v for k, v in gcj(spot.lon, spot.lat).items() if k != "coordinate_system"}
    off = client.post(WHISTLES, json={**body, **raw}, headers=chief)
    assert (off.status_code, off.json()["code"]) == (422, "place_off_segment")

    blown = client.post(WHISTLES, json={**body, **gcj(spot.lon, spot.lat)}, headers=chief)

    assert blown.status_code == 201, blown.text
    whistle = blown.json()
    assert metres((whistle["lon"], whistle["lat"]), (spot.lon, spot.lat)) < 0.01
    came = client.post(
        f"{WHISTLES}/{whistle['id']}/report-in",
        json=gcj(*spot.moved(40)),
        headers=as_user("demo-staff"),
    )
    assert came.status_code == 200, came.text
    (summons,) = came.json()["summonses"]
    assert summons["status"] == "on_time"
    assert 35 < summons["distance_m"] < 45


def test_check_ins_shop_visits_and_inspections_take_gcj02(
    client: TestClient, as_user: Headers, session: Session, spot: Spot, good_jpeg: Any
) -> None:
    station = session.scalars(
        select(Workstation)
        .join(Jurisdiction, Workstation.street_id == Jurisdiction.id)
        .where(Jurisdiction.code == spot.street_code)
        .order_by(Workstation.code)
    ).first()
    assert station is not None
    place = to_shape(station.geom)
    chief = as_user("demo-chief-3")
    came = client.post(f"/api/v1/workstations/{station.code}/check-in",
                       json=gcj(place.x + 0.0003, place.y), headers=chief)  # fmt: skip
    assert came.status_code == 201, came.text
    assert 20 < came.json()["in_distance_m"] < 35

    shop = shop_of(session, "demo-chief-2")
    visit = visit_body(shop)
    visit.update(gcj(visit["lon"], visit["lat"]))
    visited = client.post(f"/api/v1/shops/{shop.code}/visits", json=visit,
                          headers=as_user("demo-chief-2"))  # fmt: skip
    assert visited.status_code == 201, visited.text
    assert 8 < visited.json()["distance_m"] < 16

    assessor = as_user("demo-assessor")
    photo = client.post("/api/v1/photos", files={"file": ("p.jpg", good_jpeg(), "image/jpeg")},
                        headers=assessor).json()["id"]  # fmt: skip
    ended = utcnow() - timedelta(minutes=5)
    inspection = client.post("/api/v1/assessment/inspections", headers=assessor, json={
        "segment_code": spot.segment_code,
        "started_at": (ended - timedelta(minutes=40)).isoformat(), "ended_at": ended.isoformat(),
        "track": [[t["lon"], t["lat"]] for t in (gcj(*spot.moved(-50)), gcj(*spot.moved(50)))],
        "coordinate_system": "gcj02",
        "deductions": [{"item_code": "S01", "photo_ids": [photo], **gcj(spot.lon, spot.lat)}],
    })  # fmt: skip
    assert inspection.status_code == 201, inspection.text
    (deduction,) = inspection.json()["deductions"]
    assert deduction["distance_m"] < 1
    assert metres((deduction["lon"], deduction["lat"]), (spot.lon, spot.lat)) < 0.01


@pytest.mark.parametrize(
    ("method", "path", "where"),
    [
        ("POST", DRY_RUN, ["body", "coordinate_system"]),
        ("POST", "/api/v1/reports", ["body", "coordinate_system"]),
        ("POST", WHISTLES, ["body", "coordinate_system"]),
        ("POST", f"{WHISTLES}/1/report-in", ["body", "coordinate_system"]),
        ("POST", "/api/v1/workstations/WS-1/check-in", ["body", "coordinate_system"]),
        ("POST", "/api/v1/shops/SHOP-1/visits", ["body", "coordinate_system"]),
        ("POST", "/api/v1/cases/2026/actions/verify_pass", ["body", "coordinate_system"]),
        ("POST", "/api/v1/patrols/1/fixes", ["body", "fixes", 0, "coordinate_system"]),
        ("GET", "/api/v1/cases/nearby", ["query", "coordinate_system"]),
    ],
)
def test_an_unknown_coordinate_system_is_refused(
    client: TestClient, spot: Spot, method: str, path: str, where: list[Any]
) -> None:
    point = {"lon": spot.lon, "lat": spot.lat, "coordinate_system": "bd09"}
    if method == "GET":
        answer = client.get(path, params={**point, "category": "roads.surface"})
    elif "fixes" in where:
        fix = {**point, "recorded_at": utcnow().isoformat()}
        answer = client.post(path, json={"fixes": [fix]})
    else:
        answer = client.post(path, json={**report_body(spot), **point})

    assert (answer.status_code, answer.json()["code"]) == (422, "validation_failed")
    assert where in [e["loc"] for e in answer.json()["errors"]]


def test_a_case_step_refuses_half_a_point(client: TestClient, spot: Spot) -> None:
    answer = client.post("/api/v1/cases/2026/actions/verify_pass", json={"lon": spot.lon})

    assert (answer.status_code, answer.json()["code"]) == (422, "validation_failed")
    assert answer.json()["errors"][0]["loc"] == ["body"]
