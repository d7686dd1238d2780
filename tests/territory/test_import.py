"""An admin loads a city's territory from GeoJSON: all of a file, or none of it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.territory.models import Asset, GridCell, Jurisdiction, RoadSegment, Shop, Unit

# A small square community inside the demo city's first street (文博路街道, 410199001).
LON, LAT = 113.5650, 34.8050
D = 0.0009  # ≈ 82 m east-west, 100 m north-south


def square(lon: float, lat: float, d: float = D) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        ],
    }


def feature(properties: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def counts(session: Session) -> dict[str, int]:
    return {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0
        for m in (Jurisdiction, Unit, GridCell, RoadSegment, Asset)
    }


def post(client: TestClient, layer: str, body: Any) -> Any:
    return client.post(f"/api/v1/admin/territory/{layer}/import", json=body)


def new_manhole(code: str = "MH-GAS-999001", lon: float = LON, lat: float = LAT) -> dict[str, Any]:
    return feature(
        {"code": code, "asset_type": "manhole_cover", "owner_unit_code": "gas-company"},
        {"type": "Point", "coordinates": [lon, lat]},
    )


def test_admin_imports_manholes_then_updates_them(client: TestClient, session: Session) -> None:
    before = counts(session)
    response = post(
        client, "assets", collection(new_manhole(), new_manhole("MH-GAS-999002", LON + 0.001))
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"layer": "assets", "created": 2, "updated": 0}
    assert counts(session)["assets"] == before["assets"] + 2

    moved = new_manhole(lon=LON + 0.0002)
    moved["properties"]["owner_unit_code"] = "water-company"
    response = post(client, "assets", collection(moved))
    assert response.json() == {"layer": "assets", "created": 0, "updated": 1}
    got = client.get("/api/v1/territory/assets/MH-GAS-999001").json()
    assert got["properties"]["owner_unit_code"] == "water-company"
    assert got["geometry"]["coordinates"] == pytest.approx([LON + 0.0002, LAT])


def test_new_community_with_grid_cells_gets_its_path(client: TestClient) -> None:
    community = feature(
        {
            "code": "410199001099",
            "name": "试点社区",
            "level": "community",
            "parent_code": "410199001",
        },
        square(LON, LAT, 2 * D),
    )
    assert post(client, "jurisdictions", collection(community)).status_code == 200
    cells = collection(
        *(
            feature(
                {"code": f"41019900109900{i}", "community_code": "410199001099"},
                square(LON + i * D, LAT),
            )
            for i in range(2)
        )
    )
    assert post(client, "grid_cells", cells).json()["created"] == 2

    got = client.get("/api/v1/territory/jurisdictions/410199001099").json()
    assert got["properties"]["path"] == ["410199", "410199001", "410199001099"]
    assert got["properties"]["parent_code"] == "410199001"
    cell = client.get("/api/v1/territory/grid-cells/410199001099001").json()
    assert cell["properties"] == {
        "code": "410199001099001",
        "community_code": "410199001099",
        "street_code": "410199001",
    }


def test_road_segment_length_and_street_are_derived(client: TestClient) -> None:
    line = {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.01, LAT]]}
    segment = feature(
        {
            "code": "RS-TEST-1",
            "name": "测试路（甲街—乙街段）",
            "road_name": "测试路",
            "grade": "back_lane",
        },
        line,
    )
    assert post(client, "road_segments", collection(segment)).status_code == 200
    props = client.get("/api/v1/territory/road-segments/RS-TEST-1").json()["properties"]
    # PostGIS agrees: ST_Length(geography) of this line is 915.042 m on WGS 84.
    assert props["length_m"] == pytest.approx(915.04, abs=0.01)
    assert props["street_code"] == "410199001"


# --- bad input: a specific problem, and nothing stored ------------------------------------

SELF_INTERSECTING = {
    "type": "Polygon",
    "coordinates": [[[LON, LAT], [LON + D, LAT + D], [LON + D, LAT], [LON, LAT + D], [LON, LAT]]],
}
BAD_FILES: list[tuple[str, str, Any, str, list[Any] | None]] = [
    ("not a feature collection", "assets", {"type": "Feature"}, "geojson_malformed", None),
    (
        "features not a list",
        "assets",
        {"type": "FeatureCollection", "features": {}},
        "geojson_malformed",
        None,
    ),
    (
        "projected crs",
        "assets",
        {
            "type": "FeatureCollection",
            "features": [],
            "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
        },
        "geojson_malformed",
        None,
    ),
    (
        "self-intersecting polygon",
        "grid_cells",
        collection(feature({"code": "G-X", "community_code": "410199001001"}, SELF_INTERSECTING)),
        "geometry_invalid",
        ["features", 0, "geometry"],
    ),
    (
        "wrong geometry type",
        "assets",
        collection(
            feature(
                {"code": "MH-X", "asset_type": "manhole_cover", "owner_unit_code": "gas-company"},
                square(LON, LAT),
            )
        ),
        "geometry_type_not_allowed",
        ["features", 0, "geometry"],
    ),
    (
        "latitude beyond 90",
        "assets",
        collection(new_manhole(lat=95.0)),
        "coordinates_out_of_range",
        ["features", 0, "geometry"],
    ),
    (
        "outside the service area box",
        "assets",
        collection(new_manhole(lon=2.35, lat=48.85)),
        "outside_service_area",
        ["features", 0, "geometry"],
    ),
    (
        "inside China but outside the district",
        "assets",
        collection(new_manhole(lon=113.9, lat=34.9)),
        "outside_service_area",
        ["features", 0, "geometry"],
    ),
    (
        "unknown property",
        "assets",
        collection(
            feature({**new_manhole()["properties"], "colour": "red"}, new_manhole()["geometry"])
        ),
        "extra_forbidden",
        ["features", 0, "properties", "colour"],
    ),
    (
        "unknown feature member",
        "assets",
        collection({**new_manhole(), "style": {}}),
        "extra_forbidden",
        ["features", 0, "style"],
    ),
    (
        "unknown owner unit",
        "assets",
        collection(
            feature(
                {**new_manhole()["properties"], "owner_unit_code": "no-such-unit"},
                new_manhole()["geometry"],
            )
        ),
        "unknown_reference",
        ["features", 0, "properties", "owner_unit_code"],
    ),
    (
        "unknown enum value",
        "assets",
        collection(
            feature(
                {**new_manhole()["properties"], "asset_type": "bench"}, new_manhole()["geometry"]
            )
        ),
        "enum",
        ["features", 0, "properties", "asset_type"],
    ),
    (
        "missing geometry",
        "assets",
        collection(feature(new_manhole()["properties"], None)),
        "geometry_malformed",
        ["features", 0, "geometry"],
    ),
    (
        "grid cell outside its community",
        "grid_cells",
        collection(
            feature({"code": "G-Y", "community_code": "410199001001"}, square(113.60, 34.83))
        ),
        "outside_parent",
        ["features", 0, "geometry"],
    ),
    (
        "community without parent",
        "jurisdictions",
        collection(
            feature(
                {"code": "410199001098", "name": "孤儿社区", "level": "community"}, square(LON, LAT)
            )
        ),
        "parent_required",
        ["features", 0, "properties", "parent_code"],
    ),
]


@pytest.mark.parametrize(
    ("layer", "body", "code", "loc"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_is_refused_whole(
    client: TestClient, session: Session, layer: str, body: Any, code: str, loc: list[Any] | None
) -> None:
    before = counts(session)
    response = post(client, layer, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"]
    if loc is None:
        assert problem["code"] == code
    else:
        assert problem["code"] == "territory_import_invalid"
        assert {"loc": loc, "code": code} in [
            {"loc": e["loc"], "code": e["code"]} for e in problem["errors"]
        ]
        assert all(e["message"] for e in problem["errors"])
    assert counts(session) == before


def test_one_bad_feature_among_good_ones_stores_nothing(
    client: TestClient, session: Session
) -> None:
    before = counts(session)
    good = [new_manhole(f"MH-GAS-99910{i}", LON + i * 0.0003) for i in range(5)]
    bad = new_manhole("MH-GAS-999199", lat=95.0)
    duplicate = new_manhole("MH-GAS-999100")
    response = post(client, "assets", collection(*good, bad, duplicate))
    assert response.status_code == 422
    problem = response.json()
    assert problem["error_count"] == 2
    assert [e["loc"][:2] for e in problem["errors"]] == [["features", 5], ["features", 6]]
    assert problem["errors"][1]["code"] == "duplicate_code"
    assert counts(session) == before
    assert client.get("/api/v1/territory/assets/MH-GAS-999100").status_code == 404


def test_body_that_is_not_json(client: TestClient, session: Session) -> None:
    before = counts(session)
    response = client.post(
        "/api/v1/admin/territory/assets/import",
        content=b"{not json",
        headers={"content-type": "application/geo+json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert counts(session) == before


def test_unknown_layer(client: TestClient) -> None:
    response = post(client, "rivers", collection())
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "layer"]


def test_cli_import_reports_every_error_and_stores_nothing(
    factory: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.settings import get_settings
    from tests.support.databases import migrate

    url = factory.new_url()
    migrate(factory.database(url))
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        district = feature(
            {"code": "999001", "name": "测试区", "level": "district"}, square(LON, LAT, 0.01)
        )
        street = feature(
            {"code": "999001001", "name": "测试街道", "level": "street", "parent_code": "999001"},
            square(LON + 0.02, LAT, 0.001),
        )  # outside
        bad = tmp_path / "bad.geojson"
        bad.write_text(json.dumps(collection(district, street)), encoding="utf-8")
        result = CliRunner().invoke(cli, ["territory", "import", "jurisdictions", str(bad)])
        assert result.exit_code == 1
        assert "outside_parent" in result.output

        good = copy.deepcopy(collection(district))
        path = tmp_path / "good.geojson"
        path.write_text(json.dumps(good), encoding="utf-8")
        result = CliRunner().invoke(cli, ["territory", "import", "jurisdictions", str(path)])
        assert result.exit_code == 0, result.output
        assert "1 created" in result.output
        with factory.database(url).sessions() as s:
            assert s.scalars(select(Jurisdiction.code)).all() == ["999001"]
    finally:
        get_settings.cache_clear()


# --- shops: a frontage faces its segment ----------------------------------------------------


def shop_feature(code: str, lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return feature(
        {"code": code, "name": "测试便利店", "pledge": "five", **props},
        {"type": "Point", "coordinates": [lon, lat]},
    )


def test_a_shop_joins_the_nearest_segment_or_the_one_named(
    client: TestClient, session: Session
) -> None:
    segment = session.scalars(select(RoadSegment).where(RoadSegment.grade == "trunk")
                              .order_by(RoadSegment.code)).first()  # fmt: skip
    assert segment is not None
    middle = to_shape(segment.geom).interpolate(0.5, normalized=True)
    north = middle.y + 12 / 111_000  # 12 m north of a trunk road
    body = collection(
        shop_feature("SH-T-1", middle.x, north),
        shop_feature("SH-T-2", middle.x, north, segment_code=segment.code, kind="institution",
                     contact_phone="0371-12345678"),
    )  # fmt: skip
    answer = post(client, "shops", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 2
    for code in ("SH-T-1", "SH-T-2"):
        props = client.get(f"/api/v1/territory/shops/{code}").json()["properties"]
        assert (props["segment_code"], props["pledge"]) == (segment.code, "five")
    listed = client.get("/api/v1/territory/shops", params={"segment": segment.code, "kind":
                        "institution"}).json()["features"]  # fmt: skip
    assert [f["id"] for f in listed] == ["SH-T-2"]


def test_a_shop_far_from_every_road_or_its_named_one_is_refused(
    client: TestClient, session: Session
) -> None:
    segment = session.scalars(select(RoadSegment).order_by(RoadSegment.code)).first()
    assert segment is not None
    before = session.scalar(select(func.count()).select_from(Shop))
    # The middle of a block without a back lane, 125 m from every road.
    lon, lat = 113.560 + 250 / 91_500, 34.800 + 500 / 111_000
    body = collection(
        shop_feature("SH-T-3", lon, lat),
        shop_feature("SH-T-4", lon, lat, segment_code=segment.code),
        shop_feature("SH-T-5", lon, lat, segment_code="RS-NOPE"),
    )
    answer = post(client, "shops", body)
    assert answer.status_code == 422
    assert [(e["loc"][1], e["code"]) for e in answer.json()["errors"]] == [
        (0, "segment_not_found"), (1, "too_far_from_segment"), (2, "unknown_reference"),
    ]  # fmt: skip
    assert session.scalar(select(func.count()).select_from(Shop)) == before
