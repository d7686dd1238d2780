"""The demo city generator: counts, references, geometry and the committed scale-1 data."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from shapely.geometry import LinearRing, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from app.core.geo import LocalFrame
from app.demo.citygen import (
    DATA_DIR,
    DISTRICT_CODE,
    LAYERS,
    ORIGIN_LAT,
    ORIGIN_LON,
    chinese_numeral,
    district_size,
    generate_city,
    main,
    split_uneven,
    to_lonlat,
    write_city,
)
from app.demo.units import STATIC_UNITS

City = dict[str, dict[str, Any]]

PROPERTY_NAMES = {
    "jurisdictions": {"code", "name", "level", "parent_code"},
    "units": {"code", "name", "name_en", "kind", "jurisdiction_code"},
    "grid_cells": {"code", "community_code"},
    "road_segments": {"code", "name", "road_name", "grade", "excellence"},
    "assets": {"code", "asset_type", "owner_unit_code", "name"},
    "workstations": {"code", "name", "street_code", "address"},
    "shops": {"code", "name", "kind", "pledge", "address", "segment_code"},
}
GEOMETRY_TYPES = {
    "jurisdictions": "Polygon",
    "units": None,
    "grid_cells": "Polygon",
    "road_segments": "LineString",
    "assets": "Point",
    "workstations": "Point",
    "shops": "Point",
}
# Every 牵头单位 and 责任单位 named in the Huiji plan (seed 000).
SEED_DEPARTMENTS = (
    "区城管局",
    "区住建局",
    "区交通局",
    "区林业和园林局",
    "区农委",
    "区财政局",
    "区卫健委",
    "区市场监督管理局",
    "区消防救援大队",
    "市市场发展中心惠济市场分中心",
    "市公安局长兴路分局",
    "市公安局大河路分局",
    "市交警五大队",
    "区政务服务和大数据管理局",
    "区教体局",
    "区发改统计局",
    "区自然资源局",
    "市交通局执法支队惠济大队",
    "区残联",
    "区环保局",
    "市城乡规划惠济服务中心",
    "区商务局",
    "区科工局",
    "区文化旅游局",
    "古荥大运河文化区",
    "区规划发展中心",
    "区文明办",
    "区工会",
    "团区委",
    "区妇联",
)


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(1.0)


def _props(city: City, layer: str) -> list[dict[str, Any]]:
    return [f["properties"] for f in city[layer]["features"]]


def _by_level(city: City, level: str) -> dict[str, BaseGeometry]:
    return {
        f["properties"]["code"]: shape(f["geometry"])
        for f in city["jurisdictions"]["features"]
        if f["properties"]["level"] == level
    }


def _district(city: City) -> BaseGeometry:
    return _by_level(city, "district")[DISTRICT_CODE]


# --- invariants that hold at every scale --------------------------------------------------------


def check_shape(city: City) -> None:
    assert tuple(city) == LAYERS
    for layer, collection in city.items():
        assert collection["type"] == "FeatureCollection"
        for feature in collection["features"]:
            assert set(feature) == {"type", "properties", "geometry"}
            assert feature["type"] == "Feature"
            assert set(feature["properties"]) == PROPERTY_NAMES[layer]
            geometry = feature["geometry"]
            expected = GEOMETRY_TYPES[layer]
            assert (geometry is None) if expected is None else geometry["type"] == expected


def check_codes_unique(city: City) -> None:
    for layer in LAYERS:
        codes = Counter(p["code"] for p in _props(city, layer))
        assert [c for c, n in codes.items() if n > 1] == [], layer


def check_references(city: City) -> None:
    jurisdictions = {p["code"]: p for p in _props(city, "jurisdictions")}
    for p in jurisdictions.values():
        if p["level"] == "district":
            assert p["parent_code"] is None
        else:
            parent = jurisdictions[p["parent_code"]]
            assert parent["level"] == {"street": "district", "community": "street"}[p["level"]]
            assert p["code"].startswith(parent["code"])
    streets = {c for c, p in jurisdictions.items() if p["level"] == "street"}
    units = {p["code"]: p for p in _props(city, "units")}
    offices = {p["jurisdiction_code"] for p in units.values() if p["kind"] == "street_office"}
    assert offices == streets
    for p in units.values():
        assert (p["jurisdiction_code"] is not None) == (p["kind"] == "street_office")
    for p in _props(city, "grid_cells"):
        assert jurisdictions[p["community_code"]]["level"] == "community"
        assert p["code"].startswith(p["community_code"])
    for p in _props(city, "assets"):
        assert units[p["owner_unit_code"]]["kind"] in {"utility", "functional_department"}
    per_street = Counter(p["street_code"] for p in _props(city, "workstations"))
    assert per_street == dict.fromkeys(streets, 2)


def check_polygons(city: City) -> None:
    for layer in ("jurisdictions", "grid_cells"):
        for feature in city[layer]["features"]:
            (ring,) = feature["geometry"]["coordinates"]
            assert ring[0] == ring[-1]
            assert LinearRing(ring).is_ccw
            assert shape(feature["geometry"]).is_valid


def check_nesting(city: City) -> None:
    district = _district(city)
    streets = _by_level(city, "street")
    communities = _by_level(city, "community")
    parents = {p["code"]: p["parent_code"] for p in _props(city, "jurisdictions")}
    assert all(district.covers(s) for s in streets.values())
    assert all(streets[parents[c]].covers(g) for c, g in communities.items())
    total = sum(g.area for g in communities.values())
    assert total == pytest.approx(district.area, rel=1e-9)
    for feature in city["grid_cells"]["features"]:
        community = communities[feature["properties"]["community_code"]]
        assert community.covers(shape(feature["geometry"])), feature["properties"]["code"]


def check_inside_district(city: City) -> None:
    district = _district(city)
    streets = _by_level(city, "street")
    for f in city["road_segments"]["features"]:
        assert district.covers(shape(f["geometry"])), f["properties"]["code"]
    for layer in ("assets", "workstations", "shops"):
        for f in city[layer]["features"]:
            assert district.contains(shape(f["geometry"])), f["properties"]["code"]
    for f in city["workstations"]["features"]:
        assert streets[f["properties"]["street_code"]].contains(shape(f["geometry"]))


def check_off_grid_lines(city: City) -> None:
    """No road or asset lies on a grid-cell edge, so each falls in exactly one cell."""
    lons: set[float] = set()
    lats: set[float] = set()
    for f in city["grid_cells"]["features"]:
        for lon, lat in f["geometry"]["coordinates"][0]:
            lons.add(lon)
            lats.add(lat)
    for f in city["road_segments"]["features"]:
        (lon_a, lat_a), *rest = f["geometry"]["coordinates"]
        for lon_b, lat_b in rest:
            assert not (lon_a == lon_b and lon_a in lons), f["properties"]["code"]
            assert not (lat_a == lat_b and lat_a in lats), f["properties"]["code"]
            lon_a, lat_a = lon_b, lat_b
    for layer in ("assets", "workstations", "shops"):
        for f in city[layer]["features"]:
            lon, lat = f["geometry"]["coordinates"]
            assert lon not in lons, f["properties"]["code"]
            assert lat not in lats, f["properties"]["code"]


def check_road_names(city: City) -> None:
    names_by_road: dict[str, set[str]] = {}
    for p in _props(city, "road_segments"):
        road_id = p["code"].rsplit("-", 1)[0] if p["grade"] != "back_lane" else p["code"]
        names_by_road.setdefault(road_id, set()).add(p["road_name"])
        assert p["name"].startswith(p["road_name"])
    assert all(len(names) == 1 for names in names_by_road.values())
    road_names = [next(iter(names)) for names in names_by_road.values()]
    assert len(road_names) == len(set(road_names))


def check_lanes_stay_inside_blocks(city: City) -> None:
    segments = city["road_segments"]["features"]
    main_roads = unary_union(
        [shape(f["geometry"]) for f in segments if f["properties"]["grade"] != "back_lane"]
    )
    for f in segments:
        if f["properties"]["grade"] == "back_lane":
            assert 2 <= len(f["geometry"]["coordinates"]) <= 3
            assert not shape(f["geometry"]).intersects(main_roads), f["properties"]["code"]


def check_segment_midpoints_in_one_street(city: City) -> None:
    """The importer gives a segment to the street holding its midpoint: never a tie."""
    streets = list(_by_level(city, "street").values())
    for f in city["road_segments"]["features"]:
        middle = shape(f["geometry"]).interpolate(0.5, normalized=True)
        assert sum(s.intersects(middle) for s in streets) == 1, f["properties"]["code"]


def check_shops_front_their_trunk_segment(city: City) -> None:
    """Each shop names the trunk segment it faces, about 10 m away, and no other segment is
    nearer (a back lane's mouth right behind a shop may tie)."""
    segments = {f["properties"]["code"]: f for f in city["road_segments"]["features"]}
    lines = [shape(f["geometry"]) for f in segments.values()]
    for f in city["shops"]["features"]:
        p = f["properties"]
        place = shape(f["geometry"])
        frame = LocalFrame(place.x, place.y)
        assert segments[p["segment_code"]]["properties"]["grade"] == "trunk", p["code"]
        own = frame.distance_m(shape(segments[p["segment_code"]]["geometry"]))
        assert 9.9 < own < 10.1, p["code"]
        assert min(frame.distances_m(lines)) > own - 0.1, p["code"]
        assert p["pledge"] == "five" or p["kind"] == "shop", p["code"]


ALL_CHECKS: tuple[Callable[[City], None], ...] = (
    check_shape,
    check_codes_unique,
    check_references,
    check_polygons,
    check_nesting,
    check_inside_district,
    check_off_grid_lines,
    check_road_names,
    check_lanes_stay_inside_blocks,
    check_segment_midpoints_in_one_street,
    check_shops_front_their_trunk_segment,
)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_scale_1_invariants(city: City, check: Callable[[City], None]) -> None:
    check(city)


@pytest.mark.parametrize("scale", [0.25, 2.5])
def test_other_scales_keep_the_invariants(scale: float) -> None:
    other = generate_city(scale)
    for check in ALL_CHECKS:
        check(other)


# --- scale 1 ------------------------------------------------------------------------------------


def test_scale_1_counts(city: City) -> None:
    levels = Counter(p["level"] for p in _props(city, "jurisdictions"))
    assert levels["district"] == 1
    assert levels["street"] >= 3
    assert levels["community"] >= 9
    width, height = district_size(1.0)
    assert len(city["grid_cells"]["features"]) == width * height // 10_000 == 2000
    grades = Counter(p["grade"] for p in _props(city, "road_segments"))
    assert sum(grades.values()) >= 40
    assert set(grades) == {"trunk", "secondary", "branch", "back_lane"}
    kinds = Counter(p["asset_type"] for p in _props(city, "assets"))
    assert 300 <= kinds["manhole_cover"] <= 1500
    assert kinds["lamp_post"] > 0
    assert len(city["workstations"]["features"]) == 2 * levels["street"]
    kinds = Counter(p["kind"] for p in _props(city, "shops"))
    assert kinds["shop"] > 400
    assert kinds["institution"] > 50


def test_units_cover_the_seed_departments(city: City) -> None:
    units = {p["name"]: p for p in _props(city, "units")}
    for name in SEED_DEPARTMENTS:
        assert units[name]["kind"] == "functional_department", name
    assert units["区精细办"]["kind"] == "command_centre"
    assert units["金河区数字化城市管理指挥中心"]["code"] == "command-centre"
    assert sum(u.kind == "utility" for u in STATIC_UNITS) == 7
    for p in units.values():
        assert p["code"].isascii()
        assert p["code"] == p["code"].lower()


def test_manholes_rotate_over_utilities(city: City) -> None:
    manholes = [p for p in _props(city, "assets") if p["asset_type"] == "manhole_cover"]
    owners = Counter(p["owner_unit_code"] for p in manholes)
    utilities = {u.code for u in STATIC_UNITS if u.kind == "utility"}
    assert set(owners) == utilities
    assert max(owners.values()) - min(owners.values()) <= 1
    assert all(
        p["code"][:7]
        in {"MH-WAT-", "MH-PWR-", "MH-GAS-", "MH-HEA-", "MH-CMC-", "MH-CUC-", "MH-CTC-"}
        for p in manholes
    )
    lamps = [p for p in _props(city, "assets") if p["asset_type"] == "lamp_post"]
    assert {p["owner_unit_code"] for p in lamps} == {"urban-management"}


def test_excellence_grades(city: City) -> None:
    segments = _props(city, "road_segments")
    grades = Counter(p["excellence"] for p in segments)
    assert 2 <= grades["ultimate"] <= 3
    assert grades["outstanding"] == pytest.approx(0.02 * len(segments), abs=1)
    assert grades["excellent"] == pytest.approx(0.10 * len(segments), abs=1)
    ultimate = [p for p in segments if p["excellence"] == "ultimate"]
    assert all(p["grade"] == "trunk" for p in ultimate)


def test_segment_names_use_the_usual_form(city: City) -> None:
    names = {p["code"]: p["name"] for p in _props(city, "road_segments")}
    assert names["RS-H00-00"] == "金河路（文博街以西至区界段）"
    assert names["RS-H00-01"] == "金河路（文博街—龙湖街段）"
    assert names["RS-V00-16"].endswith("以北至区界段）")
    assert names["RS-L0001"].endswith("巷")


def test_grid_cell_codes_run_south_to_north_then_west_to_east(city: City) -> None:
    first, second = city["grid_cells"]["features"][:2]
    assert first["properties"]["code"] == "4101990010010001"
    assert first["geometry"]["coordinates"][0][0] == [ORIGIN_LON, ORIGIN_LAT]
    assert second["properties"]["code"] == "4101990010010002"
    assert second["geometry"]["coordinates"][0][0][1] == ORIGIN_LAT  # same row, one cell east


def test_generation_is_deterministic(city: City) -> None:
    assert generate_city(1.0) == city


def test_committed_files_match_the_generator(city: City) -> None:
    for layer in LAYERS:
        path = DATA_DIR / f"{layer}.geojson"
        assert json.loads(path.read_text(encoding="utf-8")) == city[layer], (
            f"{path} is stale: run python -m app.demo.citygen --scale 1 --out app/demo/data"
        )


# --- scale, projection, helpers, CLI -----------------------------------------------------------


def test_scale_10_is_big_enough() -> None:
    big = generate_city(10.0)
    assert len(big["grid_cells"]["features"]) >= 20_000
    assert len(big["road_segments"]["features"]) >= 5_000
    check_road_names(big)
    check_codes_unique(big)


def test_district_size() -> None:
    assert district_size(1.0) == (5000, 4000)
    assert district_size(4.0) == (10_000, 8000)
    assert district_size(10.0) == (15_900, 12_700)
    with pytest.raises(ValueError, match="scale"):
        district_size(0.1)


def test_linear_mapping_matches_the_ellipsoid() -> None:
    geod = Geod(ellps="WGS84")
    lon0, lat0 = to_lonlat(0, 0)
    assert (lon0, lat0) == (ORIGIN_LON, ORIGIN_LAT)
    lon_e, lat_e = to_lonlat(5000, 0)
    lon_n, lat_n = to_lonlat(0, 4000)
    assert lat_e == ORIGIN_LAT
    assert lon_n == ORIGIN_LON
    assert geod.inv(lon0, lat0, lon_e, lat_e)[2] == pytest.approx(5000, abs=0.05)
    assert geod.inv(lon0, lat0, lon_n, lat_n)[2] == pytest.approx(4000, abs=0.05)


def test_split_uneven() -> None:
    bounds = split_uneven(50, (1.0, 1.35, 0.8))
    assert bounds[0] == 0
    assert bounds[-1] == 50
    widths = [b - a for a, b in pairwise(bounds)]
    assert len(set(widths)) == 3
    assert min(widths) >= 1
    assert split_uneven(3, (5.0, 0.01, 0.01)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cannot cut"):
        split_uneven(2, (1.0, 1.0, 1.0))


def test_chinese_numeral() -> None:
    assert [chinese_numeral(n) for n in (1, 10, 12, 20, 35, 99, 100)] == [
        "一",
        "十",
        "十二",
        "二十",
        "三十五",
        "九十九",
        "100",
    ]


def test_cli_writes_one_file_per_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scale", "0.25", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{layer}.geojson" for layer in LAYERS)
    text = (tmp_path / "units.geojson").read_text(encoding="utf-8")
    assert "区城管局" in text  # UTF-8, not \\u escapes
    assert json.loads(text) == generate_city(0.25)["units"]
    assert "grid_cells" in capsys.readouterr().out


def test_write_city_generates_and_writes(tmp_path: Path) -> None:
    city = write_city(tmp_path, scale=0.25)
    assert tuple(city) == LAYERS
    for layer in LAYERS:
        text = (tmp_path / f"{layer}.geojson").read_text(encoding="utf-8")
        assert json.loads(text) == city[layer]
