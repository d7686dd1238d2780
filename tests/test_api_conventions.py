"""One convention across the API: one name per concept, every moment in the deployment's
zone (Asia/Shanghai, +08:00), a new case at version 1.

The moments are checked on real answers: a day of the demo city's life is played through
the API (a report and its loop, a whistle, a patrol, a shop visit and rating, an
inspection, an API key, a webhook and its deliveries, a closed period), then every GET
operation of the OpenAPI document is called and every moment in every JSON answer (and in
the webhook payloads written meanwhile) must carry +08:00.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.service import user_by_username
from app.core.database import utcnow
from app.core.moments import MOMENT_EXAMPLE
from app.notifications.models import OutboxMessage
from app.territory.models import Pledge
from tests.support import Headers, Jpeg
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload
from tests.support.shops import shop_of, visit_body

#: A moment as JSON carries it: a date, a time, an offset or Z.
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
LOCAL = "+08:00"


def moments(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string that is a moment, with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from moments(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from moments(item, f"{path}[{i}]")
    elif isinstance(value, str) and MOMENT.match(value):
        yield path, value


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def a_day_of_the_city(
    client: TestClient, as_user: Headers, session: Session, spot: Spot, good_jpeg: Jpeg
) -> dict[str, Any]:
    """Everything that leaves a moment behind, done once through the API; the ids the GET
    operations' paths need."""
    chief, dispatcher = as_user("demo-chief-3"), as_user("demo-dispatcher")
    staff, assessor, admin = as_user("demo-staff"), as_user("demo-assessor"), as_user("demo-admin")
    hook = {"name": "城市运行中心", "url": "https://8.8.8.8/roadchief", "event_types": []}
    hook = _ok(client.post("/api/v1/admin/webhooks", headers=admin, json=hook), 201)
    expires = (utcnow() + timedelta(days=30)).isoformat()
    key = {"name": "考核公司", "jurisdiction_codes": ["410199"], "expires_at": expires}
    key = _ok(client.post("/api/v1/admin/api-keys", headers=admin, json=key), 201)
    client.get("/api/v1/territory/units", headers={"X-API-Key": key["key"]})  # its last use

    client.headers.update(chief)
    receipt = _ok(multipart(client, report_body(spot), [good_jpeg()]), 201)
    number = receipt["case_number"]
    case = _ok(client.get(f"/api/v1/cases/{number}", headers=dispatcher))
    decision_id = case["routing"]["id"]

    def step(who: dict[str, str], action: str, **body: Any) -> None:
        nonlocal case
        url = f"/api/v1/cases/{number}/actions/{action}"
        case = _ok(client.post(url, headers=who, json={"version": case["version"], **body}))

    step(dispatcher, "register")
    step(dispatcher, "dispatch", units=["urban-management"], reason="城管处置")
    step(staff, "sign_for")
    later = (utcnow() + timedelta(days=10)).isoformat()
    step(staff, "request_extension", note="等配件", new_due_at=later)
    whistle = {
        "segment_code": spot.segment_code, "lon": spot.lon, "lat": spot.lat,
        "category_code": "roads.waterlogging", "description": "路口积水",
        "unit_codes": ["urban-management"], "case_number": number,
    }  # fmt: skip
    whistle = _ok(client.post("/api/v1/whistles", headers=chief, json=whistle), 201)
    here = {"lon": spot.lon, "lat": spot.lat}
    _ok(client.post(f"/api/v1/whistles/{whistle['id']}/report-in", headers=staff, json=here))

    patrol = _ok(client.post("/api/v1/patrols", headers=chief, json={}), 201)
    now = utcnow()
    fixes = [
        {"lon": spot.lon + i / 100_000, "lat": spot.lat, "accuracy_m": 5,
         "recorded_at": (now - timedelta(seconds=30 - i)).isoformat()}
        for i in range(10)
    ]  # fmt: skip
    _ok(client.post(f"/api/v1/patrols/{patrol['id']}/fixes", headers=chief, json={"fixes": fixes}))
    _ok(client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief))

    shop = shop_of(session, "demo-chief-2", Pledge.FOUR)
    visit = visit_body(shop)
    visit = _ok(client.post(f"/api/v1/shops/{shop.code}/visits", headers=as_user("demo-chief-2"),
                            json=visit), 201)  # fmt: skip
    rating = {"flag": "red", "stars": 5}
    _ok(client.post(f"/api/v1/shops/{shop.code}/ratings", headers=assessor, json=rating), 201)

    photo = upload(client, good_jpeg(), headers=assessor)["id"]
    ended = utcnow() - timedelta(minutes=5)
    finding = {"item_code": "C01", "lon": spot.lon, "lat": spot.lat, "photo_ids": [photo]}
    inspection = {
        "segment_code": spot.segment_code, "deductions": [finding],
        "started_at": (ended - timedelta(minutes=40)).isoformat(), "ended_at": ended.isoformat(),
    }  # fmt: skip
    inspection = _ok(client.post("/api/v1/assessment/inspections", headers=assessor,
                                 json=inspection), 201)  # fmt: skip
    workstation = _ok(client.get("/api/v1/territory/workstations", params={"limit": 1}))
    return {
        "number": number, "report_id": receipt["report_id"], "decision_id": decision_id,
        "photo_id": receipt["photos"][0]["photo"]["id"], "whistle_id": whistle["id"],
        "patrol_id": patrol["id"], "visit_id": visit["id"], "inspection_id": inspection["id"],
        "webhook_id": hook["id"], "shop": shop.code, "segment": spot.segment_code,
        "workstation": workstation["features"][0]["id"],
        "user_id": user_by_username(session, "demo-chief-3").id,
    }  # fmt: skip


#: Who reads each path (the admin reads the rest): the owner of what it lists.
READERS = {
    "/api/v1/reports/mine": "demo-chief-3",
    "/api/v1/patrols/mine": "demo-chief-3",
    "/api/v1/tasks": "demo-staff",
    "/api/v1/queues/verification": "demo-chief-3",
    "/api/v1/inbox": "demo-staff",
}
#: Answers that are not JSON (photos, spreadsheets) hold no JSON moments to check.
NOT_JSON = {"/api/v1/photos/{photo_id}/{variant}", "/metrics"}


def _path_values(ids: dict[str, Any], session: Session) -> dict[str, str]:
    from app.territory.models import Asset, GridCell

    asset = session.scalar(select(Asset.code).order_by(Asset.code).limit(1))
    cell = session.scalar(select(GridCell.code).order_by(GridCell.code).limit(1))
    return {
        "/api/v1/territory/jurisdictions/{code}": "410199001",
        "/api/v1/territory/grid-cells/{code}": str(cell),
        "/api/v1/territory/road-segments/{code}": ids["segment"],
        "/api/v1/territory/assets/{code}": str(asset),
        "/api/v1/territory/workstations/{code}": ids["workstation"],
        "/api/v1/territory/shops/{code}": ids["shop"],
        "/api/v1/territory/units/{code}": "urban-management",
        "/api/v1/categories/{code}": "roads.surface",
        "/api/v1/workstations/{code}/check-ins": ids["workstation"],
        "/api/v1/shops/{code}/credit": ids["shop"],
        "/api/v1/shops/{code}/visits": ids["shop"],
    }


def _fill(path: str, ids: dict[str, Any], by_path: dict[str, str]) -> str:
    names = {
        "user_id": ids["user_id"], "decision_id": ids["decision_id"], "version": 1,
        "whistle_id": ids["whistle_id"], "photo_id": ids["photo_id"],
        "report_id": ids["report_id"], "number": ids["number"], "year": 2026,
        "webhook_id": ids["webhook_id"], "patrol_id": ids["patrol_id"],
        "segment_code": ids["segment"], "visit_id": ids["visit_id"],
        "inspection_id": ids["inspection_id"], "label": "2026-10", "fmt": "geojson",
    }  # fmt: skip
    if path in by_path:
        return re.sub(r"\{code\}", by_path[path], path)
    filled = path
    for name in re.findall(r"\{(\w+)\}", path):
        assert name in names, f"{path}: give the test a value for {{{name}}}"
        filled = filled.replace(f"{{{name}}}", str(names[name]))
    return filled


def _query(operation: dict[str, Any], spot: Spot) -> dict[str, Any]:
    values = {
        "lon": spot.lon, "lat": spot.lat, "category": "roads.surface",
        "category_code": "roads.surface", "from": "2026-11-01", "to": "2026-11-30",
        "by": "street", "kind": "street", "period": "2026-11",
    }  # fmt: skip
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required"):
            assert parameter["name"] in values, f"give the test a value for {parameter['name']}"
            query[parameter["name"]] = values[parameter["name"]]
    return query


@pytest.mark.time_machine("2026-11-18T10:00:00+08:00")
def test_every_moment_the_api_speaks_is_in_the_deployments_zone(
    client: TestClient, as_user: Headers, session: Session, spot: Spot, good_jpeg: Jpeg
) -> None:
    ids = a_day_of_the_city(client, as_user, session, spot, good_jpeg)
    admin = as_user("demo-admin")
    _ok(client.post("/api/v1/admin/assessment/periods/2026-10/close", headers=admin))
    by_path = _path_values(ids, session)
    wrong: list[str] = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if "get" not in operations or path in NOT_JSON:
            continue
        url = _fill(path, ids, by_path)
        who = as_user(READERS.get(path, "demo-admin"))
        answer = client.get(url, params=_query(operations["get"], spot), headers=who)
        assert answer.status_code == 200, f"GET {url}: {answer.status_code} {answer.text[:300]}"
        wrong += [f"GET {path} {where}: {value}" for where, value in moments(answer.json())
                  if not value.endswith(LOCAL)]  # fmt: skip
    for payload in session.scalars(select(OutboxMessage.payload)):
        wrong += [f"webhook {payload['type']} {where}: {value}"
                  for where, value in moments(payload) if not value.endswith(LOCAL)]  # fmt: skip
    assert wrong == [], "\n".join(wrong)


# --- names ---------------------------------------------------------------------------------

#: Properties renamed for one name per concept (issue 16): none may come back.
RENAMED = {
    "road_segment": "segment",  # locate: the nearest segment, as receipts and routing name it
    "assets": "nearby_assets",  # locate: as receipts and routing name them
    "due_at": "handle_due_at, stage, stage_due_at",  # cases, receipts, queues, search rows
}
#: A property with one of these names holds the object; `<name>_code` holds its code.
OBJECTS = {"segment", "street", "community", "unit", "asset", "territorial_unit"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _answer_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas an answer can hold (reached from a 2xx response)."""
    schemas = document["components"]["schemas"]
    todo = [
        name
        for operations in document["paths"].values()
        for operation in operations.values()
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for name in _refs(response)
    ]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _refs(schemas[name])
    return seen


def _date_times(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            yield where, node
        for key, value in node.items():
            yield from _date_times(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _date_times(value, f"{where}[{i}]")


def test_one_name_per_concept_and_one_zone_in_the_openapi_document(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        for prop, spec in schema.get("properties", {}).items():
            assert prop not in RENAMED, f"{name}.{prop} is now {RENAMED[prop]}"
            refs = list(_refs(spec))
            if prop in OBJECTS:
                assert refs, f"{name}.{prop} names an object; its code is {prop}_code"
            if prop.endswith("_code"):
                assert not refs, f"{name}.{prop} is a code; the object is {prop[:-5]}"
    # Query filters are named for what they filter by (`street`, `category`), as everywhere.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    assert not parameter["name"].endswith("_code"), (method, path, parameter)
    # Every moment an answer holds is a LocalMoment: shown, and sent, with the zone's offset.
    for name in _answer_schemas(document):
        for where, spec in _date_times(schemas[name], name):
            assert spec.get("examples") == [MOMENT_EXAMPLE], f"{where} is not a LocalMoment"


# --- versions ------------------------------------------------------------------------------


def test_a_new_case_starts_at_version_1_and_each_step_adds_one(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief, dispatcher = phone("demo-chief-3"), as_user("demo-dispatcher")
    reported = _ok(multipart(chief, report_body(spot), [good_jpeg()]), 201)
    fixed = _ok(multipart(chief, report_body(spot, fixed_on_spot=True, lon=spot.moved(200)[0]),
                          [good_jpeg()], after=[good_jpeg()]), 201)  # fmt: skip
    whistle = _ok(chief.post("/api/v1/whistles", json={
        "segment_code": spot.segment_code, "lon": spot.lon, "lat": spot.lat,
        "category_code": "roads.waterlogging", "description": "路口积水",
        "unit_codes": ["urban-management"], "open_case": True}), 201)  # fmt: skip
    numbers = [reported["case_number"], fixed["case_number"], whistle["case_number"]]
    for number in numbers:
        assert _ok(chief.get(f"/api/v1/cases/{number}", headers=dispatcher))["version"] == 1
    registered = _ok(chief.post(f"/api/v1/cases/{numbers[0]}/actions/register",
                                headers={**dispatcher, "If-Match": '"1"'}, json={}))  # fmt: skip
    assert registered["version"] == 2
