"""Deterministic generator of the fictional demo city 金河区 (Jinhe District, code 410199).

Everything is laid out in local metres (x east, y north from the south-west corner of the
district) and converted to WGS 84 lon/lat with a linear (equirectangular) mapping at the
origin latitude, so that horizontal and vertical edges stay exactly horizontal and vertical
and the 100 m grid cells (万米单元网格) nest exactly inside their communities (社区).

Layout, for a district of W x H metres:

- street offices (街道): vertical strips of uneven widths; communities: three horizontal bands
  of uneven heights per street; all boundaries on 100 m multiples;
- roads: horizontal roads (…路) at y = 125 + 250 k and vertical roads (…街) at x = 125 + 250 k,
  never on a 100 m line so that every road point falls in exactly one grid cell; each road is
  cut into segments (路段) between consecutive crossings; back lanes (背街小巷, …巷) sit in every
  third block;
- assets (部件): manhole covers (窨井) and lamp posts (路灯) along the main roads, placed at
  along-road distances that are never multiples of 100 m either;
- two road-chief workstations (路长工作站) per street office, on trunk-road crossings;
- street-front shops and units (沿街商户) every 60 m along the north/east side of trunk roads,
  each with its 门前四包/五包 pledge and the segment it fronts.

Run `python -m app.demo.citygen --scale 1 --out app/demo/data` to rewrite the committed data.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any, Final, Literal

from app.demo.units import LAMP_OWNER_CODE, STATIC_UNITS, street_office

Feature = dict[str, Any]
FeatureCollection = dict[str, Any]
Point = tuple[int, int]
Grade = Literal["trunk", "secondary", "branch", "back_lane"]
Axis = Literal["H", "V"]

DISTRICT_CODE: Final = "410199"
DISTRICT_NAME: Final = "金河区"
ORIGIN_LON: Final = 113.560
ORIGIN_LAT: Final = 34.800
COORD_DECIMALS: Final = 7
SEED: Final = 410199

BASE_WIDTH_M: Final = 5000
BASE_HEIGHT_M: Final = 4000
CELL_M: Final = 100
ROAD_FIRST_M: Final = 125
ROAD_SPACING_M: Final = 250
COMMUNITIES_PER_STREET: Final = 3
WORKSTATIONS_PER_STREET: Final = 2
MIN_SCALE: Final = 0.25

MANHOLE_SPACING_M: Final = 80
MANHOLE_FIRST_M: Final = 45  # 45 + 80 n is never a multiple of 100
MANHOLE_OFFSET_M: Final = 3
LAMP_SPACING_M: Final = 40
LAMP_FIRST_M: Final = 15  # 15 + 40 n is never a multiple of 100
LAMP_OFFSET_M: Final = -12  # kerb on the other side of the carriageway
ASSET_END_CLEARANCE_M: Final = 10
LANE_MARGIN_M: Final = 20
SHOP_SPACING_M: Final = 60
SHOP_END_CLEARANCE_M: Final = 30  # no shop on a crossing, where two segments meet
SHOP_OFFSET_M: Final = 10  # the shop fronts, north or east of the carriageway
LANE_MIN_BLOCK_M: Final = 80

LAYERS: Final = (
    "jurisdictions",
    "units",
    "grid_cells",
    "road_segments",
    "assets",
    "workstations",
    "shops",
)
DATA_DIR: Final = Path(__file__).resolve().parent / "data"

# ---------------------------------------------------------------------------------------------
# Projection: local metres -> WGS 84 lon/lat
# ---------------------------------------------------------------------------------------------

_WGS84_A: Final = 6378137.0
_WGS84_F: Final = 1 / 298.257223563


def radii_of_curvature(lat_deg: float) -> tuple[float, float]:
    """Return (M, N): the meridional and prime-vertical radii of the WGS 84 ellipsoid, metres."""
    e2 = _WGS84_F * (2 - _WGS84_F)
    w = math.sqrt(1 - e2 * math.sin(math.radians(lat_deg)) ** 2)
    return _WGS84_A * (1 - e2) / w**3, _WGS84_A / w


_M, _N = radii_of_curvature(ORIGIN_LAT)
_PARALLEL_RADIUS: Final = _N * math.cos(math.radians(ORIGIN_LAT))


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Map local metres (x east, y north of the district's south-west corner) to lon/lat."""
    lon = ORIGIN_LON + math.degrees(x / _PARALLEL_RADIUS)
    lat = ORIGIN_LAT + math.degrees(y / _M)
    return round(lon, COORD_DECIMALS), round(lat, COORD_DECIMALS)


def _position(point: Point) -> list[float]:
    return list(to_lonlat(*point))


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

# Road name stems (路名): the curated ones first, then syllable combinations.
_ROAD_STEMS: Final = (
    "金河", "文博", "兴华", "龙湖", "杏花", "丰产", "同乐", "福寿",
    "长庆", "英才", "天河", "开元", "迎宾", "育才", "建设", "人民",
    "民主", "朝阳", "新华", "和平", "光明", "解放", "胜利", "工农",
    "青年", "健康", "幸福", "平安", "东风", "红旗", "绿城", "广惠",
)  # fmt: skip

# Street office (街道) names with their pinyin for the English unit name.
_STREET_NAMES: Final = (
    ("文博路街道", "Wenbolu"),
    ("杏花街道", "Xinghua"),
    ("同乐街道", "Tongle"),
    ("丰产路街道", "Fengchanlu"),
    ("福寿街道", "Fushou"),
    ("龙湖街道", "Longhu"),
    ("长庆街道", "Changqing"),
    ("英才街道", "Yingcai"),
    ("锦华路街道", "Jinhualu"),
    ("嘉禾街道", "Jiahe"),
    ("瑞祥街道", "Ruixiang"),
    ("新城街道", "Xincheng"),
)

_COMMUNITY_STEMS: Final = (
    "文博", "锦绣", "银河", "枫林", "桃园", "梨园", "柳湖", "荷花", "紫荆",
    "翠竹", "丹桂", "芙蓉", "海棠", "玉兰", "牡丹", "石榴", "梧桐", "香樟",
    "南阳", "北苑", "东苑", "西苑", "清源", "绿洲", "阳光", "春晖", "秀水",
    "嘉园", "康宁", "和谐", "鸿福", "瑞丰", "金色", "怡景", "汇泉", "宜居",
)  # fmt: skip

_FIRST_SYLLABLES: Final = (
    ("金", "Jin"), ("银", "Yin"), ("文", "Wen"), ("兴", "Xing"), ("龙", "Long"), ("福", "Fu"),
    ("瑞", "Rui"), ("安", "An"), ("和", "He"), ("嘉", "Jia"), ("明", "Ming"), ("锦", "Jin"),
    ("泰", "Tai"), ("荣", "Rong"), ("新", "Xin"), ("永", "Yong"), ("裕", "Yu"), ("长", "Chang"),
    ("丰", "Feng"), ("康", "Kang"), ("华", "Hua"), ("宏", "Hong"), ("昌", "Chang"), ("同", "Tong"),
)  # fmt: skip
_SECOND_SYLLABLES: Final = (
    ("河", "he"), ("博", "bo"), ("华", "hua"), ("湖", "hu"), ("源", "yuan"), ("平", "ping"),
    ("康", "kang"), ("业", "ye"), ("秀", "xiu"), ("园", "yuan"), ("阳", "yang"), ("德", "de"),
    ("林", "lin"), ("丰", "feng"), ("山", "shan"), ("泉", "quan"), ("乐", "le"), ("寿", "shou"),
    ("盛", "sheng"), ("宁", "ning"), ("祥", "xiang"), ("达", "da"), ("通", "tong"), ("顺", "shun"),
)  # fmt: skip

_DIGITS: Final = "零一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """Write 1..99 in Chinese numerals (一, 十二, 三十五); larger numbers stay Arabic."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


@cache
def _syllable_stems(salt: int) -> tuple[tuple[str, str], ...]:
    """All two-syllable stems (hanzi, pinyin) in a fixed shuffled order."""
    stems = [
        (a + b, pa + pb)
        for (a, pa), (b, pb) in product(_FIRST_SYLLABLES, _SECOND_SYLLABLES)
        if a != b
    ]
    random.Random(SEED + salt).shuffle(stems)
    return tuple(stems)


@cache
def _stem_pool(curated: tuple[str, ...], salt: int) -> tuple[str, ...]:
    """Curated stems followed by the syllable stems they do not already contain."""
    seen = set(curated)
    extra = [stem for stem, _ in _syllable_stems(salt) if stem not in seen]
    return curated + tuple(extra)


def _nth_stem(pool: Sequence[str], index: int) -> str:
    """The index-th name stem; past the pool, stems come back with an ordinal (金河二)."""
    round_, position = divmod(index, len(pool))
    stem = pool[position]
    return stem if round_ == 0 else stem + chinese_numeral(round_ + 1)


def road_stem(axis: Axis, index: int) -> str:
    """Name stem of the index-th horizontal (H) or vertical (V) road; unique across both axes."""
    return _nth_stem(_stem_pool(_ROAD_STEMS, 1), 2 * index + (0 if axis == "H" else 1))


def street_name(index: int) -> tuple[str, str]:
    """Return (Chinese name, pinyin) of the index-th street office (街道)."""
    if index < len(_STREET_NAMES):
        return _STREET_NAMES[index]
    curated = {name.removesuffix("路街道").removesuffix("街道") for name, _ in _STREET_NAMES}
    extra = [(s, p) for s, p in _syllable_stems(2) if s not in curated]
    stem, pinyin = extra[(index - len(_STREET_NAMES)) % len(extra)]
    return f"{stem}街道", pinyin


def community_name(index: int) -> str:
    """Name of the index-th community (社区) of the district."""
    return _nth_stem(_stem_pool(_COMMUNITY_STEMS, 3), index) + "社区"


# ---------------------------------------------------------------------------------------------
# Plan in local metres
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    """Axis-aligned rectangle in local metres."""

    x0: int
    y0: int
    x1: int
    y1: int

    def contains_x(self, x: float) -> bool:
        """True when x lies strictly between the west and east edges."""
        return self.x0 < x < self.x1


@dataclass(frozen=True, slots=True)
class Area:
    """A jurisdiction (辖区): district, street or community, with its rectangle."""

    code: str
    name: str
    level: Literal["district", "street", "community"]
    parent_code: str | None
    rect: Rect
    pinyin: str = ""


@dataclass(frozen=True, slots=True)
class Road:
    """A whole road (道路) of the street grid: `position` is its y (H) or x (V) in metres."""

    axis: Axis
    index: int
    position: int
    stem: str
    grade: Grade

    @property
    def name(self) -> str:
        """Full road name: …路 for horizontal roads, …街 for vertical ones."""
        return self.stem + ("路" if self.axis == "H" else "街")


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole city in local metres, before conversion to GeoJSON."""

    width: int
    height: int
    district: Area
    streets: tuple[Area, ...]
    communities: tuple[Area, ...]
    horizontal: tuple[Road, ...]
    vertical: tuple[Road, ...]


def _round_up_to_cell(metres: float) -> int:
    # Rounding up (not to nearest) keeps the area at least scale x base: 10 -> 15,900 x 12,700 m.
    return CELL_M * math.ceil(metres / CELL_M - 1e-9)


def district_size(scale: float) -> tuple[int, int]:
    """Return (W, H) in metres of the district at `scale` (scale multiplies the area)."""
    if not scale >= MIN_SCALE:
        raise ValueError(f"scale must be at least {MIN_SCALE}, got {scale}")
    factor = math.sqrt(scale)
    return _round_up_to_cell(BASE_WIDTH_M * factor), _round_up_to_cell(BASE_HEIGHT_M * factor)


def street_count(scale: float) -> int:
    """Number of street offices at `scale`: max(3, round(3 * sqrt(scale)))."""
    return max(3, round(3 * math.sqrt(scale)))


_STREET_WEIGHTS: Final = (1.0, 1.35, 0.8, 1.2, 0.9, 1.1, 0.75, 1.3, 0.95, 1.15, 0.85, 1.25)
_COMMUNITY_WEIGHTS: Final = ((1.2, 0.8, 1.0), (0.9, 1.3, 0.8), (1.0, 0.85, 1.15), (0.75, 1.1, 1.15))


def split_uneven(total: int, weights: Sequence[float]) -> list[int]:
    """Cut `total` units into parts proportional to `weights`, each at least one unit.

    Returns the len(weights) + 1 boundaries, from 0 to total.
    """
    if total < len(weights):
        raise ValueError(f"cannot cut {total} units into {len(weights)} parts")
    weight_sum = sum(weights)
    bounds = [0]
    running = 0.0
    for i, weight in enumerate(weights[:-1], start=1):
        running += weight
        cut = max(round(total * running / weight_sum), bounds[-1] + 1)
        bounds.append(min(cut, total - (len(weights) - i)))
    bounds.append(total)
    return bounds


def _clear_of_midpoints(bounds: list[int]) -> list[int]:
    """Move inner boundaries (in cells) off multiples of 500 m by one cell.

    Road segments between crossings have their midpoints at multiples of 250 m; a boundary
    there would leave the street (or community) owning such a segment undecided.
    """
    cleared = list(bounds)
    for i in range(1, len(cleared) - 1):
        if cleared[i] * CELL_M % (2 * ROAD_SPACING_M) == 0:
            step = 1 if cleared[i] + 1 < cleared[i + 1] else -1
            if cleared[i - 1] < cleared[i] + step < cleared[i + 1]:
                cleared[i] += step
    return cleared


def _plan_areas(width: int, height: int, streets: int) -> tuple[Area, list[Area], list[Area]]:
    district = Area(DISTRICT_CODE, DISTRICT_NAME, "district", None, Rect(0, 0, width, height))
    weights = [_STREET_WEIGHTS[i % len(_STREET_WEIGHTS)] for i in range(streets)]
    xs = [CELL_M * b for b in _clear_of_midpoints(split_uneven(width // CELL_M, weights))]
    street_areas: list[Area] = []
    communities: list[Area] = []
    for i in range(streets):
        code = f"{DISTRICT_CODE}{i + 1:03d}"
        name, pinyin = street_name(i)
        street = Area(
            code, name, "street", DISTRICT_CODE, Rect(xs[i], 0, xs[i + 1], height), pinyin
        )
        street_areas.append(street)
        band_weights = _COMMUNITY_WEIGHTS[i % len(_COMMUNITY_WEIGHTS)]
        ys = [CELL_M * b for b in _clear_of_midpoints(split_uneven(height // CELL_M, band_weights))]
        for j in range(COMMUNITIES_PER_STREET):
            rect = Rect(xs[i], ys[j], xs[i + 1], ys[j + 1])
            community_code = f"{code}{j + 1:03d}"
            name = community_name(len(communities))
            communities.append(Area(community_code, name, "community", code, rect))
    return district, street_areas, communities


def road_grade(index: int) -> Grade:
    """Grade of the index-th road of an axis: 主干道 trunk, 次干道 secondary or 支路 branch."""
    if index % 4 == 0:
        return "trunk"
    return "secondary" if index % 2 == 0 else "branch"


def _plan_roads(axis: Axis, extent: int) -> tuple[Road, ...]:
    count = max(0, math.ceil((extent - ROAD_FIRST_M) / ROAD_SPACING_M))
    return tuple(
        Road(axis, k, ROAD_FIRST_M + ROAD_SPACING_M * k, road_stem(axis, k), road_grade(k))
        for k in range(count)
    )


def plan_city(scale: float = 1.0) -> Plan:
    """Lay out the district at `scale` in local metres."""
    width, height = district_size(scale)
    district, streets, communities = _plan_areas(width, height, street_count(scale))
    return Plan(
        width=width,
        height=height,
        district=district,
        streets=tuple(streets),
        communities=tuple(communities),
        horizontal=_plan_roads("H", height),
        vertical=_plan_roads("V", width),
    )


# ---------------------------------------------------------------------------------------------
# GeoJSON helpers
# ---------------------------------------------------------------------------------------------


def _feature(properties: dict[str, Any], geometry: dict[str, Any] | None) -> Feature:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _collection(features: list[Feature]) -> FeatureCollection:
    return {"type": "FeatureCollection", "features": features}


def _rect_polygon(rect: Rect) -> dict[str, Any]:
    # Counter-clockwise exterior ring, as RFC 7946 asks.
    corners = [
        (rect.x0, rect.y0),
        (rect.x1, rect.y0),
        (rect.x1, rect.y1),
        (rect.x0, rect.y1),
        (rect.x0, rect.y0),
    ]
    return {"type": "Polygon", "coordinates": [[_position(c) for c in corners]]}


def _line(points: Sequence[Point]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [_position(p) for p in points]}


def _point(point: Point) -> dict[str, Any]:
    return {"type": "Point", "coordinates": _position(point)}


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def _jurisdiction_layer(plan: Plan) -> FeatureCollection:
    areas = [plan.district, *plan.streets, *plan.communities]
    return _collection(
        [
            _feature(
                {
                    "code": area.code,
                    "name": area.name,
                    "level": area.level,
                    "parent_code": area.parent_code,
                },
                _rect_polygon(area.rect),
            )
            for area in areas
        ]
    )


def _unit_layer(plan: Plan) -> FeatureCollection:
    offices = [street_office(s.code, s.name, s.pinyin) for s in plan.streets]
    return _collection([_feature(u.as_properties(), None) for u in (*STATIC_UNITS, *offices)])


def _community_cells(community: Area) -> Iterator[Feature]:
    """Grid cells (万米单元网格) of one community, numbered row by row from the south-west."""
    rect = community.rect
    serial = 0
    for y in range(rect.y0, rect.y1, CELL_M):
        for x in range(rect.x0, rect.x1, CELL_M):
            serial += 1
            cell = Rect(x, y, x + CELL_M, y + CELL_M)
            properties = {"code": f"{community.code}{serial:04d}", "community_code": community.code}
            yield _feature(properties, _rect_polygon(cell))


def _grid_layer(plan: Plan) -> FeatureCollection:
    return _collection([cell for c in plan.communities for cell in _community_cells(c)])


def _crossing_label(road: Road, before: Road | None, after: Road | None) -> str:
    """The 路段 label between two cross roads; an end at the district edge reads …至区界."""
    if before is not None and after is not None:
        return f"{before.name}—{after.name}段"
    west, east = ("以西", "以东") if road.axis == "H" else ("以南", "以北")
    if after is not None:
        return f"{after.name}{west}至区界段"
    if before is not None:
        return f"{before.name}{east}至区界段"
    return "全段"


def _road_segments(road: Road, crossers: Sequence[Road], extent: int) -> Iterator[Feature]:
    """Cut one road into segments between consecutive crossings and the district edges."""
    stops: list[Road | None] = [None, *crossers, None]
    cuts = [0, *(c.position for c in crossers), extent]
    for block in range(len(cuts) - 1):
        a, b = cuts[block], cuts[block + 1]
        ends: list[Point] = (
            [(a, road.position), (b, road.position)]
            if road.axis == "H"
            else [(road.position, a), (road.position, b)]
        )
        label = _crossing_label(road, stops[block], stops[block + 1])
        properties = {
            "code": f"RS-{road.axis}{road.index:02d}-{block:02d}",
            "name": f"{road.name}（{label}）",
            "road_name": road.name,
            "grade": road.grade,
            "excellence": None,
        }
        yield _feature(properties, _line(ends))


def _off_grid(metres: float) -> int:
    """Whole metres, nudged off 100 m lines so lanes never run along a grid-cell edge."""
    value = round(metres)
    return value + 7 if value % CELL_M == 0 else value


def _lane_points(block: Rect, from_north: bool, rng: random.Random) -> list[Point]:
    """A 2- or 3-vertex back lane entering the block from its southern or northern road."""
    inner = Rect(
        block.x0 + LANE_MARGIN_M,
        block.y0 + LANE_MARGIN_M,
        block.x1 - LANE_MARGIN_M,
        block.y1 - LANE_MARGIN_M,
    )
    x = _off_grid(inner.x0 + rng.uniform(0.3, 0.7) * (inner.x1 - inner.x0))
    depth = rng.uniform(0.45, 0.8) * (inner.y1 - inner.y0)
    start = inner.y1 if from_north else inner.y0
    end = _off_grid(start - depth if from_north else start + depth)
    points: list[Point] = [(x, _off_grid(start)), (x, end)]
    if rng.random() < 0.5:  # some lanes turn once, towards the wider side of the block
        reach = rng.uniform(0.25, 0.45) * (inner.x1 - inner.x0)
        midline = (inner.x0 + inner.x1) / 2
        points.append((_off_grid(x + reach if x < midline else x - reach), end))
    return points


def _blocks(plan: Plan) -> Iterator[tuple[int, int, Rect]]:
    """Blocks (街区) between roads and district edges as (column, row, rect), south to north."""
    xs = [0, *(r.position for r in plan.vertical), plan.width]
    ys = [0, *(r.position for r in plan.horizontal), plan.height]
    for row in range(len(ys) - 1):
        for column in range(len(xs) - 1):
            yield column, row, Rect(xs[column], ys[row], xs[column + 1], ys[row + 1])


def _lane_layer(plan: Plan) -> Iterator[Feature]:
    """Back lanes (背街小巷) in every third block, named after the road they leave (金河北一巷)."""
    if not plan.horizontal:
        return
    lanes_per_side: dict[tuple[int, bool], int] = {}
    serial = 0
    for column, row, block in _blocks(plan):
        too_small = min(block.x1 - block.x0, block.y1 - block.y0) < LANE_MIN_BLOCK_M
        if (column + 2 * row) % 3 != 0 or too_small:
            continue
        from_north = row == 0  # the southernmost blocks have no road on their south side
        road = plan.horizontal[0] if from_north else plan.horizontal[row - 1]
        side_count = lanes_per_side.get((road.index, from_north), 0) + 1
        lanes_per_side[road.index, from_north] = side_count
        serial += 1
        name = f"{road.stem}{'南' if from_north else '北'}{chinese_numeral(side_count)}巷"
        rng = random.Random(f"lane:{column}:{row}")
        properties = {
            "code": f"RS-L{serial:04d}",
            "name": name,
            "road_name": name,
            "grade": "back_lane",
            "excellence": None,
        }
        yield _feature(properties, _line(_lane_points(block, from_north, rng)))


def _excellence_quotas(total: int) -> tuple[int, int, int]:
    """Counts of ultimate (极致), outstanding (卓越) and excellent (优秀) segments (千百十)."""
    return max(2, round(0.0035 * total)), round(0.02 * total), round(0.10 * total)


def _assign_excellence(segments: list[Feature]) -> None:
    """Mark the 千百十 grades: ultimate among trunk roads, outstanding among main roads."""
    rng = random.Random(SEED)
    ultimate, outstanding, excellent = _excellence_quotas(len(segments))
    grades = [s["properties"]["grade"] for s in segments]
    free = set(range(len(segments)))
    tiers: list[tuple[str, int, set[Grade]]] = [
        ("ultimate", ultimate, {"trunk"}),
        ("outstanding", outstanding, {"trunk", "secondary"}),
        ("excellent", excellent, {"trunk", "secondary", "branch", "back_lane"}),
    ]
    for label, quota, allowed in tiers:
        eligible = [i for i in sorted(free) if grades[i] in allowed]
        for i in rng.sample(eligible, min(quota, len(eligible))):
            segments[i]["properties"]["excellence"] = label
            free.discard(i)


def _road_layer(plan: Plan) -> FeatureCollection:
    segments: list[Feature] = []
    for road in plan.horizontal:
        segments.extend(_road_segments(road, plan.vertical, plan.width))
    for road in plan.vertical:
        segments.extend(_road_segments(road, plan.horizontal, plan.height))
    segments.extend(_lane_layer(plan))
    _assign_excellence(segments)
    return _collection(segments)


@dataclass(frozen=True, slots=True)
class _ManholeOwner:
    unit_code: str
    tag: str
    well: str  # kind of well in the asset name (给水井, 电力井, …)


_MANHOLE_OWNERS: Final = (
    _ManholeOwner("water-company", "WAT", "给水井"),
    _ManholeOwner("power-company", "PWR", "电力井"),
    _ManholeOwner("gas-company", "GAS", "燃气井"),
    _ManholeOwner("heat-company", "HEA", "热力井"),
    _ManholeOwner("telecom-china-mobile", "CMC", "通信井"),
    _ManholeOwner("telecom-china-unicom", "CUC", "通信井"),
    _ManholeOwner("telecom-china-telecom", "CTC", "通信井"),
)


def _along(road: Road, length: int, first: int, spacing: int, offset: int) -> Iterator[Point]:
    """Points every `spacing` metres along a road, `offset` metres to its left (north/east)."""
    for t in range(first, length - ASSET_END_CLEARANCE_M, spacing):
        if road.axis == "H":
            yield t, road.position + offset
        else:
            yield road.position + offset, t


def _main_roads(plan: Plan) -> Iterator[tuple[Road, int]]:
    """Trunk and secondary roads with their lengths; utilities and lighting run along these."""
    for road in plan.horizontal:
        if road.grade in ("trunk", "secondary"):
            yield road, plan.width
    for road in plan.vertical:
        if road.grade in ("trunk", "secondary"):
            yield road, plan.height


def _manholes(plan: Plan) -> Iterator[Feature]:
    """Manhole covers (窨井盖) every 80 m, owners in rotation, numbered per owner."""
    serials = dict.fromkeys((o.tag for o in _MANHOLE_OWNERS), 0)
    count = 0
    for road, length in _main_roads(plan):
        for point in _along(road, length, MANHOLE_FIRST_M, MANHOLE_SPACING_M, MANHOLE_OFFSET_M):
            owner = _MANHOLE_OWNERS[count % len(_MANHOLE_OWNERS)]
            count += 1
            serials[owner.tag] += 1
            properties = {
                "code": f"MH-{owner.tag}-{serials[owner.tag]:06d}",
                "asset_type": "manhole_cover",
                "owner_unit_code": owner.unit_code,
                "name": f"{road.name}{owner.well}",
            }
            yield _feature(properties, _point(point))


def _lamp_posts(plan: Plan) -> Iterator[Feature]:
    """Lamp posts (路灯杆) every 40 m along trunk and secondary roads."""
    serial = 0
    for road, length in _main_roads(plan):
        points = _along(road, length, LAMP_FIRST_M, LAMP_SPACING_M, LAMP_OFFSET_M)
        for number, point in enumerate(points, start=1):
            serial += 1
            properties = {
                "code": f"LP-{serial:06d}",
                "asset_type": "lamp_post",
                "owner_unit_code": LAMP_OWNER_CODE,
                "name": f"{road.name}{number}号路灯",
            }
            yield _feature(properties, _point(point))


def _asset_layer(plan: Plan) -> FeatureCollection:
    return _collection([*_manholes(plan), *_lamp_posts(plan)])


@dataclass(frozen=True, slots=True)
class _Crossing:
    across: Road  # horizontal road
    along: Road  # vertical road

    @property
    def point(self) -> Point:
        return self.along.position, self.across.position

    @property
    def rank(self) -> int:
        """0 for two trunk roads, 1 for one, 2 for none: lower is a better site."""
        return 2 - [self.across.grade, self.along.grade].count("trunk")


def _workstation_sites(plan: Plan, street: Area) -> list[_Crossing]:
    """Two crossings in the street, preferring trunk x trunk, one low and one high."""
    candidates = [
        _Crossing(h, v)
        for v in plan.vertical
        if street.rect.contains_x(v.position)
        for h in plan.horizontal
    ]
    if len(candidates) < WORKSTATIONS_PER_STREET:
        raise ValueError(f"street {street.code} has too few road crossings for workstations")
    centre_x = (street.rect.x0 + street.rect.x1) / 2
    sites: list[_Crossing] = []
    for k in range(WORKSTATIONS_PER_STREET):
        target_y = plan.height * (k + 1) / (WORKSTATIONS_PER_STREET + 1)

        def closeness(c: _Crossing, ty: float = target_y) -> tuple[Any, ...]:
            return (c.rank, abs(c.point[0] - centre_x) + abs(c.point[1] - ty), c.point)

        site = min((c for c in candidates if c not in sites), key=closeness)
        sites.append(site)
    return sites


def _workstation_layer(plan: Plan) -> FeatureCollection:
    features: list[Feature] = []
    for street in plan.streets:
        for number, site in enumerate(_workstation_sites(plan, street), start=1):
            properties = {
                "code": f"WS-{len(features) + 1:03d}",
                "name": f"{street.name}第{number}路长工作站",
                "street_code": street.code,
                "address": (
                    f"{DISTRICT_NAME}{street.name}{site.across.name}与{site.along.name}交叉口"
                ),
            }
            features.append(_feature(properties, _point(site.point)))
    return _collection(features)


_SHOP_TRADES: Final = (
    "便民超市", "烩面馆", "水果店", "五金店", "理发店", "药房", "早餐店", "手机店",
    "花店", "面包房", "茶叶店", "服装店", "眼镜店", "文具店", "洗衣店", "烟酒店",
)  # fmt: skip
_INSTITUTIONS: Final = ("社区卫生服务站", "银行营业厅", "邮政所", "派出所", "供电营业厅")
INSTITUTION_EVERY: Final = 7  # one frontage in seven is a unit, not a shop
FIVE_PLEDGE_EVERY: Final = 5  # among shops, one in five signed the 五包 pledge


def _shop_layer(plan: Plan) -> FeatureCollection:
    features: list[Feature] = []
    roads = [(r, plan.vertical, plan.width) for r in plan.horizontal if r.grade == "trunk"]
    roads += [(r, plan.horizontal, plan.height) for r in plan.vertical if r.grade == "trunk"]
    for road, crossers, extent in roads:
        segments = list(_road_segments(road, crossers, extent))
        cuts = [0, *(c.position for c in crossers), extent]
        for block, segment in enumerate(segments):
            a, b = cuts[block] + SHOP_END_CLEARANCE_M, cuts[block + 1] - SHOP_END_CLEARANCE_M
            for t in range(a, b + 1, SHOP_SPACING_M):
                serial = len(features) + 1
                institution = serial % INSTITUTION_EVERY == 0
                if institution:
                    name = f"{road.stem}{_INSTITUTIONS[serial % len(_INSTITUTIONS)]}"
                else:
                    name = f"{road.stem}{_SHOP_TRADES[serial % len(_SHOP_TRADES)]}"
                point: Point = (
                    (t, road.position + SHOP_OFFSET_M)
                    if road.axis == "H"
                    else (road.position + SHOP_OFFSET_M, t)
                )
                properties = {
                    "code": f"SH-{serial:06d}",
                    "name": name,
                    "kind": "institution" if institution else "shop",
                    "pledge": "five" if institution or serial % FIVE_PLEDGE_EVERY == 0 else "four",
                    "address": f"{DISTRICT_NAME}{road.name}{2 * (t // 20) + 1}号",
                    "segment_code": segment["properties"]["code"],
                }
                features.append(_feature(properties, _point(point)))
    return _collection(features)


def generate_city(scale: float = 1.0) -> dict[str, FeatureCollection]:
    """Generate the demo district at `scale` as GeoJSON FeatureCollections keyed by layer.

    Layers come in import order (see LAYERS). The output depends only on `scale`.
    """
    plan = plan_city(scale)
    return {
        "jurisdictions": _jurisdiction_layer(plan),
        "units": _unit_layer(plan),
        "grid_cells": _grid_layer(plan),
        "road_segments": _road_layer(plan),
        "assets": _asset_layer(plan),
        "workstations": _workstation_layer(plan),
        "shops": _shop_layer(plan),
    }


# ---------------------------------------------------------------------------------------------
# Files and CLI
# ---------------------------------------------------------------------------------------------


def render_layer(collection: FeatureCollection) -> str:
    """Serialise a FeatureCollection as compact UTF-8 JSON with one feature per line."""
    lines = [
        json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
        for feature in collection["features"]
    ]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def write_layers(city: dict[str, FeatureCollection], out_dir: Path) -> dict[str, Path]:
    """Write each layer to `<out_dir>/<layer>.geojson`; return the written paths by layer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for layer, collection in city.items():
        path = out_dir / f"{layer}.geojson"
        path.write_text(render_layer(collection), encoding="utf-8", newline="\n")
        paths[layer] = path
    return paths


def write_city(out_dir: Path, scale: float = 1.0) -> dict[str, FeatureCollection]:
    """Generate the city at `scale`, write one file per layer to `out_dir`, return the city."""
    city = generate_city(scale)
    write_layers(city, out_dir)
    return city


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate the demo city and write one GeoJSON file per layer."""
    parser = argparse.ArgumentParser(
        prog="python -m app.demo.citygen",
        description="Generate the fictional demo district 金河区 as GeoJSON layers.",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="area multiplier (default 1)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        city = write_city(args.out, scale=args.scale)
    except ValueError as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - started
    width, height = district_size(args.scale)
    print(f"金河区 scale {args.scale:g}: {width} m x {height} m, {elapsed:.2f} s")
    for layer, collection in city.items():
        print(f"{layer:>14} {len(collection['features']):>7}  {args.out / f'{layer}.geojson'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
