"""Anyone with a map reads the territory as GeoJSON pages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/territory/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_jurisdiction_tree_of_the_demo_city(client: TestClient) -> None:
    streets = get(client, "jurisdictions", level="street")
    assert streets["type"] == "FeatureCollection"
    assert streets["numberReturned"] == len(streets["features"]) == 3
    first = streets["features"][0]
    assert first["geometry"]["type"] == "MultiPolygon"
    communities = get(client, "jurisdictions", parent=first["id"])
    assert len(communities["features"]) == 3
    assert {f["properties"]["path"][1] for f in communities["features"]} == {first["id"]}


def test_walking_every_page_returns_each_segment_once(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 250} | ({"cursor": cursor} if cursor else {})
        page = get(client, "road-segments", **params)
        seen += [f["id"] for f in page["features"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 795
    assert seen == sorted(seen)


def test_bbox_returns_what_lies_in_the_box(client: TestClient) -> None:
    box = (113.565, 34.805, 113.568, 34.807)
    cells = get(client, "grid-cells", bbox=",".join(map(str, box)), limit=1000)["features"]
    assert 6 <= len(cells) <= 20
    for cell in cells:
        xs = [c[0] for c in cell["geometry"]["coordinates"][0]]
        ys = [c[1] for c in cell["geometry"]["coordinates"][0]]
        assert min(xs) <= box[2]
        assert max(xs) >= box[0]
        assert min(ys) <= box[3]
        assert max(ys) >= box[1]


def test_filters_combine(client: TestClient) -> None:
    trunk = get(client, "road-segments", grade="trunk", street="410199001", limit=1000)["features"]
    assert trunk
    assert {f["properties"]["grade"] for f in trunk} == {"trunk"}
    assert {f["properties"]["street_code"] for f in trunk} == {"410199001"}
    gas = get(client, "assets", owner="gas-company", asset_type="manhole_cover", limit=5)
    assert [f["properties"]["owner_unit_name"] for f in gas["features"]] == ["金河燃气公司"] * 5


def test_units_and_workstations(client: TestClient) -> None:
    utilities = get(client, "units", kind="utility")["items"]
    assert {u["code"] for u in utilities} >= {
        "water-company",
        "power-company",
        "gas-company",
        "heat-company",
    }
    street_office = get(client, "units", kind="street_office")["items"][0]
    assert street_office["jurisdiction_code"].startswith("410199")
    assert get(client, "units/urban-management")["name"] == "区城管局"
    stations = get(client, "workstations")["features"]
    assert len(stations) == 6
    assert stations[0]["geometry"]["type"] == "Point"


def test_shops_with_their_pledge_and_segment(client: TestClient) -> None:
    five = get(client, "shops", pledge="five", street="410199001", limit=20)["features"]
    assert five
    assert {f["properties"]["pledge"] for f in five} == {"five"}
    assert {f["properties"]["street_code"] for f in five} == {"410199001"}
    first = five[0]["properties"]
    assert get(client, f"road-segments/{first['segment_code']}")["properties"]["grade"] == "trunk"
    assert get(client, f"shops/{first['code']}")["properties"] == first
    assert (first["credit"], first["flag"]) == (100.0, None)


def test_unknown_code_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/territory/road-segments/RS-NOPE")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.get("/api/v1/territory/units/nope").json()["code"] == "not_found"


def test_bad_paging_and_box_parameters(client: TestClient) -> None:
    cases = [
        ({"bbox": "113.6,34.8,113.5,34.9"}, 400, "invalid_bbox"),
        ({"bbox": "1,2,3"}, 400, "invalid_bbox"),
        ({"cursor": "%%%not-a-cursor"}, 400, "invalid_cursor"),
        ({"limit": 5000}, 422, "validation_failed"),
        ({"grade": "motorway"}, 422, "validation_failed"),
    ]
    for params, status, code in cases:
        response = client.get("/api/v1/territory/road-segments", params=params)
        assert (response.status_code, response.json()["code"]) == (status, code), params
