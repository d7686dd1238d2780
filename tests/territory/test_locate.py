"""A patroller's phone asks "where am I?": jurisdictions, grid cell, segment, assets."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy.orm import Session

from app.access.rules import SYSTEM
from app.core.database import Database
from app.core.geo import metres_per_degree
from app.settings import Settings
from app.territory.locator import locate
from tests.support.territory import by_code, demo


def locate_json(client: TestClient, lon: float, lat: float, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/territory/locate", params={"lon": lon, "lat": lat, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_centre_of_a_grid_cell_names_cell_community_and_street(client: TestClient) -> None:
    cell = demo("grid_cells")[777]
    community = by_code("jurisdictions", cell["properties"]["community_code"])
    street = by_code("jurisdictions", community["properties"]["parent_code"])
    centre = shape(cell["geometry"]).centroid

    found = locate_json(client, centre.x, centre.y)

    assert found["grid_cell_code"] == cell["properties"]["code"]
    assert found["community"]["code"] == community["properties"]["code"]
    assert found["street"] == {
        "code": street["properties"]["code"],
        "name": street["properties"]["name"],
        "level": "street",
    }
    assert [p["level"] for p in found["jurisdictions"]] == ["district", "street", "community"]
    assert found["jurisdictions"][0]["code"] == "410199"


def test_nearest_segment_and_its_distance_in_metres(client: TestClient) -> None:
    segment = next(f for f in demo("road_segments") if f["properties"]["code"] == "RS-H03-05")
    line = shape(segment["geometry"])
    mid = line.interpolate(0.5, normalized=True)
    _, per_lat = metres_per_degree(mid.y)

    found = locate_json(client, mid.x, mid.y + 20 / per_lat)  # 20 m north of the centreline

    assert found["segment"]["code"] == "RS-H03-05"
    assert found["segment"]["name"] == segment["properties"]["name"]
    assert found["segment"]["distance_m"] == pytest.approx(20.0, abs=0.01)
    # Outside a 15 m radius the same point has no segment.
    narrow = locate_json(client, mid.x, mid.y + 20 / per_lat, segment_radius_m=15)
    assert narrow["segment"] is None


def test_manhole_under_the_phone_comes_first_with_its_owner(client: TestClient) -> None:
    manhole = next(f for f in demo("assets") if f["properties"]["owner_unit_code"] == "gas-company")
    lon, lat = manhole["geometry"]["coordinates"]

    found = locate_json(client, lon, lat, asset_limit=3)

    assert found["nearby_assets"][0] == {
        "code": manhole["properties"]["code"],
        "asset_type": "manhole_cover",
        "owner_unit_code": "gas-company",
        "owner_unit_name": "金河燃气公司",
        "distance_m": 0.0,
    }
    assert len(found["nearby_assets"]) <= 3
    distances = [a["distance_m"] for a in found["nearby_assets"]]
    assert distances == sorted(distances)
    assert all(d <= 30 for d in distances)


@pytest.mark.parametrize(
    ("lon", "lat", "status", "code"),
    [
        (113.9, 34.9, 422, "outside_service_area"),  # in China, not in the district
        (2.35, 48.85, 422, "outside_service_area"),  # Paris
        (200.0, 34.8, 422, "invalid_location"),
        (113.57, -95.0, 422, "invalid_location"),
    ],
)
def test_points_that_cannot_be_located(
    client: TestClient, lon: float, lat: float, status: int, code: str
) -> None:
    response = client.get("/api/v1/territory/locate", params={"lon": lon, "lat": lat})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_missing_or_non_numeric_coordinates(client: TestClient) -> None:
    response = client.get("/api/v1/territory/locate", params={"lon": "east", "lat": 34.8})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["errors"][0]["loc"] == ["query", "lon"]
    assert body["errors"][0]["message"] == "应为数字"


def sample_points(n: int = 150) -> list[tuple[float, float]]:
    """Points all over the district, and points exactly on features and borders."""
    rng = random.Random(20261123)
    district = shape(by_code("jurisdictions", "410199")["geometry"])
    x1, y1, x2, y2 = district.bounds
    points = [(rng.uniform(x1, x2), rng.uniform(y1, y2)) for _ in range(n)]
    points += [tuple(f["geometry"]["coordinates"]) for f in demo("assets")[::300]]
    points += [tuple(f["geometry"]["coordinates"][0]) for f in demo("road_segments")[::80]]
    points += [tuple(f["geometry"]["coordinates"][0][0]) for f in demo("grid_cells")[::200]]
    return [p for p in points if district.covers(shapely.Point(p))]


def test_spatialite_and_postgis_give_the_same_answers(
    demo_database_for: Callable[[str], Database],
) -> None:
    """The same points through both engines: identical answers, to the centimetre."""
    from tests.support.databases import ENGINES

    settings = Settings(database_url="sqlite:///:memory:")
    if len(ENGINES) < 2:
        pytest.fail("this comparison needs both engines (run ./scripts/test)")
    answers: dict[str, list[dict[str, Any]]] = {}
    for engine in ENGINES:
        database = demo_database_for(engine)
        with database.sessions() as session:
            answers[engine] = [
                locate(session, SYSTEM, settings, lon, lat, segment_radius_m=60).model_dump()
                for lon, lat in sample_points()
            ]
    sqlite, postgis = answers["sqlite"], answers["postgis"]
    assert len(sqlite) > 150
    assert sum(1 for a in sqlite if a["segment"]) > 50  # the comparison is not vacuous
    assert sum(1 for a in sqlite if a["nearby_assets"]) > 20
    assert sqlite == postgis


@pytest.mark.parametrize(
    ("statement", "params", "table"),
    [
        ("_CONTAINING_PLACES", "point", "jurisdictions"),
        ("_GRID_CELL", "point", "grid_cells"),
        ("_SEGMENT_CANDIDATES", "box", "road_segments"),
        ("_ASSET_CANDIDATES", "box", "assets"),
    ],
)
def test_locate_asks_the_spatial_index_not_every_row(
    session: Session, engine_name: str, statement: str, params: str, table: str
) -> None:
    """SpatiaLite never uses its R*Tree by itself; PostGIS must be able to use its GiST."""
    from app.core.geo import LocalFrame
    from app.territory import locator

    lon, lat = 113.66, 34.80
    bound = (
        locator._point_params(lon, lat)
        if params == "point"
        else locator._box_params(LocalFrame(lon, lat), 50)
    )
    compiled = (
        getattr(locator, statement)
        .params(bound)
        .compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
    )
    conn = session.connection()
    if engine_name == "sqlite":
        plan = " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        assert f"SCAN {table}" not in plan, plan
        assert f"idx_{table}_geom VIRTUAL TABLE" in plan, plan
    else:
        # The demo tables are small enough for a sequential scan to win; forbid it to
        # learn whether the index can serve the query at all.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " | ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
        assert f"ix_{table}_geom" in plan or f"idx_{table}_geom" in plan, plan
