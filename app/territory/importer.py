"""Import of territory layers from GeoJSON FeatureCollections (CLI and admin API).

All or nothing: every feature is checked (shape, properties, geometry, references,
containment) before anything is written, and the caller gets every problem at once,
each located as ["features", i, ...].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from pydantic import BaseModel, ValidationError
from shapely.geometry.base import BaseGeometry
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.core.database import Base, utcnow
from app.core.errors import FieldError, Problem, field_errors_from_pydantic
from app.core.geo import COVER_TOLERANCE_DEG, LocalFrame, geodesic_length_m, parse_geometry
from app.territory.models import (
    Asset,
    GridCell,
    Jurisdiction,
    JurisdictionLevel,
    RoadSegment,
    Shop,
    Unit,
    UnitKind,
    Workstation,
)
from app.territory.schemas import (
    AssetIn,
    GridCellIn,
    ImportResult,
    JurisdictionIn,
    RoadSegmentIn,
    ShopIn,
    UnitIn,
    WorkstationIn,
)

if TYPE_CHECKING:
    from app.settings import Settings

#: At most this many problems are listed; the count says how many there were.
MAX_LISTED_ERRORS = 500
_FEATURE_MEMBERS = {"type", "id", "geometry", "properties", "bbox"}


class Layer(StrEnum):
    """The territory layers, in the order a new city is loaded."""

    JURISDICTIONS = "jurisdictions"
    UNITS = "units"
    GRID_CELLS = "grid_cells"
    ROAD_SEGMENTS = "road_segments"
    ASSETS = "assets"
    WORKSTATIONS = "workstations"
    SHOPS = "shops"


class GeoJSONMalformed(Problem):
    code = "geojson_malformed"
    status = 422
    title = "GeoJSON 格式错误"


class TerritoryImportRejected(Problem):
    code = "territory_import_invalid"
    status = 422
    title = "导入文件有误，未导入任何数据"


@dataclass(slots=True)
class _Item:
    """One feature that passed the shape checks."""

    index: int
    props: Any
    geom: BaseGeometry | None


@dataclass(slots=True)
class _Problems:
    items: list[FieldError] = field(default_factory=list)

    def add(self, index: int, where: Sequence[str], code: str, message: str) -> None:
        self.items.append(FieldError(loc=["features", index, *where], code=code, message=message))

    def raise_if_any(self) -> None:
        if self.items:
            total = len(self.items)
            raise TerritoryImportRejected(
                f"共 {total} 处错误，请修正后重新导入",
                errors=self.items[:MAX_LISTED_ERRORS],
                error_count=total,
            )


@dataclass(frozen=True, slots=True)
class _Place:
    id: int
    code: str
    level: JurisdictionLevel
    geom: BaseGeometry


def _places(session: Session, level: JurisdictionLevel | None = None) -> dict[str, _Place]:
    query = select(Jurisdiction.id, Jurisdiction.code, Jurisdiction.level, Jurisdiction.geom)
    if level is not None:
        query = query.where(Jurisdiction.level == level)
    places = {}
    for id_, code, lvl, geom in session.execute(query):
        shape = to_shape(geom)
        shapely.prepare(shape)
        places[code] = _Place(id_, code, lvl, shape)
    return places


def _covers(outer: BaseGeometry, inner: BaseGeometry) -> bool:
    return bool(outer.covers(inner) or outer.buffer(COVER_TOLERANCE_DEG).covers(inner))


def _service_area(session: Session) -> BaseGeometry | None:
    """The union of the root jurisdictions, or None while there are none."""
    roots = [p.geom for p in _places(session, JurisdictionLevel.DISTRICT).values()]
    if not roots:
        return None
    area = shapely.union_all(roots).buffer(COVER_TOLERANCE_DEG)
    shapely.prepare(area)
    return area


# --- per-layer resolution: references, containment, rows ------------------------------------

_PARENT_LEVEL = {
    JurisdictionLevel.DISTRICT: None,
    JurisdictionLevel.STREET: JurisdictionLevel.DISTRICT,
    JurisdictionLevel.COMMUNITY: JurisdictionLevel.STREET,
}
_LEVEL_NAMES = {"district": "区/县", "street": "街道/镇", "community": "社区/村"}


def _resolve_jurisdictions(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    known = _places(session)
    in_file = {i.props.code: i for i in items}
    rows = []
    for item in items:
        p: JurisdictionIn = item.props
        assert item.geom is not None
        want = _PARENT_LEVEL[p.level]
        if want is None:
            if p.parent_code is not None:
                problems.add(
                    item.index,
                    ["properties", "parent_code"],
                    "parent_not_allowed",
                    "区/县级辖区不能有上级辖区",
                )
        elif p.parent_code is None:
            problems.add(
                item.index,
                ["properties", "parent_code"],
                "parent_required",
                f"{_LEVEL_NAMES[p.level]}级辖区必须指定上级辖区",
            )
        else:
            parent_level, parent_geom = None, None
            if p.parent_code in in_file:
                parent = in_file[p.parent_code]
                parent_level, parent_geom = parent.props.level, parent.geom
            elif p.parent_code in known:
                parent_level = known[p.parent_code].level
                parent_geom = known[p.parent_code].geom
            if parent_geom is None:
                problems.add(
                    item.index,
                    ["properties", "parent_code"],
                    "unknown_reference",
                    f"上级辖区 {p.parent_code} 不存在",
                )
            elif parent_level != want:
                problems.add(
                    item.index,
                    ["properties", "parent_code"],
                    "wrong_parent_level",
                    f"上级辖区 {p.parent_code} 应为{_LEVEL_NAMES[want]}级",
                )
            elif not _covers(parent_geom, item.geom):
                problems.add(
                    item.index,
                    ["geometry"],
                    "outside_parent",
                    f"辖区范围超出上级辖区 {p.parent_code}",
                )
        geom = item.geom
        if geom.geom_type == "Polygon":
            geom = shapely.MultiPolygon([geom])
        rows.append(
            {
                "code": p.code,
                "name": p.name,
                "level": p.level,
                "path": "/",
                "geom": from_shape(geom, srid=4326),
            }
        )
    return rows


def _link_jurisdictions(session: Session, items: list[_Item]) -> None:
    """Second pass after the rows exist: parent ids, then every path of the tree."""
    ids = dict(session.execute(select(Jurisdiction.code, Jurisdiction.id)).all())
    parents = [
        {
            "id": ids[i.props.code],
            "parent_id": ids[i.props.parent_code] if i.props.parent_code else None,
        }
        for i in items
    ]
    session.execute(update(Jurisdiction), parents)
    tree = session.execute(
        select(Jurisdiction.id, Jurisdiction.code, Jurisdiction.parent_id, Jurisdiction.path)
    ).all()
    by_id = {row.id: row for row in tree}

    def path_of(row: Any) -> str:
        chain = []
        while row is not None:
            chain.append(row.code)
            row = by_id.get(row.parent_id)
        return "/" + "/".join(reversed(chain)) + "/"

    paths = {r.id: path_of(r) for r in tree}
    changed = [{"id": r.id, "path": paths[r.id]} for r in tree if paths[r.id] != r.path]
    if changed:
        session.execute(update(Jurisdiction), changed)


def _resolve_units(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    streets = _places(session, JurisdictionLevel.STREET)
    rows = []
    for item in items:
        p: UnitIn = item.props
        jurisdiction_id = None
        if p.jurisdiction_code is not None:
            place = streets.get(p.jurisdiction_code)
            if place is None:
                problems.add(
                    item.index,
                    ["properties", "jurisdiction_code"],
                    "unknown_reference",
                    f"街道/镇级辖区 {p.jurisdiction_code} 不存在",
                )
            else:
                jurisdiction_id = place.id
        elif p.kind == UnitKind.STREET_OFFICE:
            problems.add(
                item.index,
                ["properties", "jurisdiction_code"],
                "jurisdiction_required",
                "街道办事处必须指定所辖街道",
            )
        rows.append(
            {
                "code": p.code,
                "name": p.name,
                "name_en": p.name_en,
                "kind": p.kind,
                "jurisdiction_id": jurisdiction_id,
            }
        )
    return rows


def _resolve_grid_cells(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    communities = _places(session, JurisdictionLevel.COMMUNITY)
    rows = []
    for item in items:
        p: GridCellIn = item.props
        assert item.geom is not None
        place = communities.get(p.community_code)
        if place is None:
            problems.add(
                item.index,
                ["properties", "community_code"],
                "unknown_reference",
                f"社区/村级辖区 {p.community_code} 不存在",
            )
            continue
        if not _covers(place.geom, item.geom):
            problems.add(
                item.index,
                ["geometry"],
                "outside_parent",
                f"网格超出所属社区 {p.community_code} 的范围",
            )
        rows.append(
            {"code": p.code, "community_id": place.id, "geom": from_shape(item.geom, srid=4326)}
        )
    return rows


def _in_area(area: BaseGeometry | None, geom: BaseGeometry) -> bool:
    return area is None or bool(area.covers(geom))


def _resolve_road_segments(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    streets = _places(session, JurisdictionLevel.STREET)
    street_list = list(streets.values())
    index = shapely.STRtree([s.geom for s in street_list]) if street_list else None
    area = _service_area(session)
    rows = []
    for item in items:
        p: RoadSegmentIn = item.props
        assert item.geom is not None
        if not _in_area(area, item.geom):
            problems.add(item.index, ["geometry"], "outside_service_area", "路段超出本区范围")
            continue
        if p.street_code is not None:
            street = streets.get(p.street_code)
            if street is None:
                problems.add(
                    item.index,
                    ["properties", "street_code"],
                    "unknown_reference",
                    f"街道/镇级辖区 {p.street_code} 不存在",
                )
                continue
        else:
            # The street that holds the segment's midpoint owns it.
            mid = item.geom.interpolate(0.5, normalized=True)
            hits = sorted(index.query(mid, predicate="intersects")) if index is not None else []
            if not hits:
                problems.add(
                    item.index,
                    ["properties", "street_code"],
                    "street_not_found",
                    "路段中点不在任何街道/镇范围内，请指定 street_code",
                )
                continue
            street = street_list[hits[0]]
        rows.append(
            {
                "code": p.code,
                "name": p.name,
                "road_name": p.road_name,
                "grade": p.grade,
                "excellence": p.excellence,
                "length_m": round(geodesic_length_m(item.geom), 2),
                "street_id": street.id,
                "geom": from_shape(item.geom, srid=4326),
            }
        )
    return rows


def _resolve_assets(
    session: Session, items: list[_Item], problems: _Problems, national_ids: NationalIdCheck
) -> list[dict[str, Any]]:
    units = dict(session.execute(select(Unit.code, Unit.id)).all())
    area = _service_area(session)
    districts = list(_places(session, JurisdictionLevel.DISTRICT).items())
    rows = []
    for item in items:
        p: AssetIn = item.props
        assert item.geom is not None
        if p.owner_unit_code not in units:
            problems.add(
                item.index,
                ["properties", "owner_unit_code"],
                "unknown_reference",
                f"产权单位 {p.owner_unit_code} 不存在",
            )
            continue
        if not _in_area(area, item.geom):
            problems.add(item.index, ["geometry"], "outside_service_area", "部件位置超出本区范围")
            continue
        if p.national_id is not None:
            district = next((c for c, d in districts if _covers(d.geom, item.geom)), None)
            issues = national_ids(p.national_id, district)
            for code, message in issues:
                problems.add(item.index, ["properties", "national_id"], code, message)
            if issues:
                continue
        rows.append(
            {
                "code": p.code,
                "asset_type": p.asset_type,
                "name": p.name,
                "national_id": p.national_id,
                "owner_unit_id": units[p.owner_unit_code],
                "geom": from_shape(item.geom, srid=4326),
            }
        )
    return rows


def _resolve_workstations(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    streets = _places(session, JurisdictionLevel.STREET)
    rows = []
    for item in items:
        p: WorkstationIn = item.props
        assert item.geom is not None
        street = streets.get(p.street_code)
        if street is None:
            problems.add(
                item.index,
                ["properties", "street_code"],
                "unknown_reference",
                f"街道/镇级辖区 {p.street_code} 不存在",
            )
            continue
        if not _covers(street.geom, item.geom):
            problems.add(
                item.index, ["geometry"], "outside_parent", f"工作站不在街道 {p.street_code} 范围内"
            )
        rows.append(
            {
                "code": p.code,
                "name": p.name,
                "address": p.address,
                "street_id": street.id,
                "geom": from_shape(item.geom, srid=4326),
            }
        )
    return rows


#: A shop without a segment code joins the nearest segment within this distance.
SHOP_SEGMENT_MAX_M = 60.0


def _resolve_shops(
    session: Session, items: list[_Item], problems: _Problems
) -> list[dict[str, Any]]:
    segments = [
        (code, seg_id, street_id, to_shape(geom))
        for code, seg_id, street_id, geom in session.execute(
            select(RoadSegment.code, RoadSegment.id, RoadSegment.street_id, RoadSegment.geom)
        )
    ]
    by_code = {s[0]: s for s in segments}
    index = shapely.STRtree([s[3] for s in segments]) if segments else None
    rows = []
    for item in items:
        p: ShopIn = item.props
        assert item.geom is not None
        frame = LocalFrame(item.geom.x, item.geom.y)
        if p.segment_code is not None:
            segment = by_code.get(p.segment_code)
            if segment is None:
                problems.add(item.index, ["properties", "segment_code"], "unknown_reference",
                             f"路段 {p.segment_code} 不存在")  # fmt: skip
                continue
        else:
            # Degrees are not metres, so take a few nearest candidates and measure them.
            near = index.query(item.geom.buffer(0.002)) if index is not None else []
            ranked = sorted((frame.distance_m(segments[i][3]), segments[i][0], i) for i in near)
            if not ranked or ranked[0][0] > SHOP_SEGMENT_MAX_M:
                message = f"{SHOP_SEGMENT_MAX_M:.0f} 米内没有路段，请指定 segment_code"
                problems.add(item.index, ["properties", "segment_code"], "segment_not_found",
                             message)  # fmt: skip
                continue
            segment = segments[ranked[0][2]]
        if frame.distance_m(segment[3]) > SHOP_SEGMENT_MAX_M:
            problems.add(item.index, ["geometry"], "too_far_from_segment",
                         f"商户距路段 {segment[0]} 超过 {SHOP_SEGMENT_MAX_M:.0f} 米")  # fmt: skip
            continue
        rows.append({
            "code": p.code, "name": p.name, "kind": p.kind, "pledge": p.pledge,
            "address": p.address, "contact_name": p.contact_name,
            "contact_phone": p.contact_phone, "segment_id": segment[1],
            "street_id": segment[2], "geom": from_shape(item.geom, srid=4326),
        })  # fmt: skip
    return rows


#: What is wrong with an asset's national identifier (部件标识码) lying in a district (its
#: code, if any), as (code, Chinese message) pairs. The rule is the national standard's
#: (`standards.identifiers.national_id_issues`); whoever imports hands it in (the app at
#: start, the command line, the demo), so the territory needs no standards package.
NationalIdCheck = Callable[[str, str | None], list[tuple[str, str]]]
Resolver = Callable[[Session, list["_Item"], "_Problems", NationalIdCheck], list[dict[str, Any]]]


def _plain(
    resolve: Callable[[Session, list[_Item], _Problems], list[dict[str, Any]]],
) -> Resolver:
    """A resolver with no national identifiers to check."""
    return lambda session, items, problems, _national_ids: resolve(session, items, problems)


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """How one layer is read: its table, properties, geometry types and resolver."""

    model: type[Base]
    properties: type[BaseModel]
    geometry_types: tuple[str, ...]
    resolve: Resolver
    link: Callable[[Session, list[_Item]], None] | None = None
    sort_key: Callable[[_Item], Any] | None = None


_LEVEL_ORDER = {
    JurisdictionLevel.DISTRICT: 0,
    JurisdictionLevel.STREET: 1,
    JurisdictionLevel.COMMUNITY: 2,
}

LAYERS: dict[Layer, LayerSpec] = {
    Layer.JURISDICTIONS: LayerSpec(
        Jurisdiction,
        JurisdictionIn,
        ("Polygon", "MultiPolygon"),
        _plain(_resolve_jurisdictions),
        _link_jurisdictions,
        lambda i: _LEVEL_ORDER[i.props.level],
    ),
    Layer.UNITS: LayerSpec(Unit, UnitIn, (), _plain(_resolve_units)),
    Layer.GRID_CELLS: LayerSpec(GridCell, GridCellIn, ("Polygon",), _plain(_resolve_grid_cells)),
    Layer.ROAD_SEGMENTS: LayerSpec(
        RoadSegment, RoadSegmentIn, ("LineString",), _plain(_resolve_road_segments)
    ),
    Layer.ASSETS: LayerSpec(Asset, AssetIn, ("Point",), _resolve_assets),
    Layer.WORKSTATIONS: LayerSpec(
        Workstation, WorkstationIn, ("Point",), _plain(_resolve_workstations)
    ),
    Layer.SHOPS: LayerSpec(Shop, ShopIn, ("Point",), _plain(_resolve_shops)),
}


# --- the pipeline --------------------------------------------------------------------------


def _features(document: Any) -> list[Any]:
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise GeoJSONMalformed("文件应为 GeoJSON FeatureCollection（type 为 FeatureCollection）")
    features = document.get("features")
    if not isinstance(features, list):
        raise GeoJSONMalformed("FeatureCollection 缺少 features 数组")
    crs = document.get("crs")
    if crs is not None and "4326" not in str(crs) and "CRS84" not in str(crs):
        raise GeoJSONMalformed("坐标系必须是 WGS 84（EPSG:4326）经纬度")
    return features


def _parse(
    spec: LayerSpec, features: list[Any], settings: Settings, problems: _Problems
) -> list[_Item]:
    items: list[_Item] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.add(index, [], "feature_malformed", "应为 GeoJSON Feature 对象")
            continue
        for member in sorted(set(feature) - _FEATURE_MEMBERS):
            problems.add(index, [member], "extra_forbidden", f"不允许的字段 {member}")
        try:
            props: Any = spec.properties.model_validate(feature.get("properties") or {})
        except ValidationError as exc:
            problems.items.extend(
                field_errors_from_pydantic(exc.errors(), prefix=["features", index, "properties"])
            )
            props = None
        geom = None
        raw_geom = feature.get("geometry")
        if spec.geometry_types:
            geom, issue = parse_geometry(raw_geom, spec.geometry_types, settings.service_area)
            if issue is not None:
                problems.add(index, ["geometry"], issue.code, issue.message)
        elif raw_geom is not None:
            problems.add(
                index,
                ["geometry"],
                "geometry_not_allowed",
                "该图层的要素不带几何图形，geometry 应为 null",
            )
        if props is None or (spec.geometry_types and geom is None):
            continue
        if props.code in seen:
            problems.add(
                index,
                ["properties", "code"],
                "duplicate_code",
                f"编码 {props.code} 与第 {seen[props.code]} 个要素重复",
            )
            continue
        seen[props.code] = index
        items.append(_Item(index, props, geom))
    return items


def _chunks(seq: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _upsert(session: Session, model: Any, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert new codes, update existing ones; returns (created, updated)."""
    existing: dict[str, int] = {}
    for chunk in _chunks([r["code"] for r in rows]):
        existing.update(
            session.execute(select(model.code, model.id).where(model.code.in_(chunk))).all()
        )
    now = utcnow()
    new = [r for r in rows if r["code"] not in existing]
    changed = [
        {**r, "id": existing[r["code"]], "updated_at": now} for r in rows if r["code"] in existing
    ]
    for chunk in _chunks(new):
        session.execute(insert(model), list(chunk))
    for chunk in _chunks(changed):
        session.execute(update(model), list(chunk))
    return len(new), len(changed)


def import_layer(
    session: Session, settings: Settings, layer: Layer, document: Any, national_ids: NationalIdCheck
) -> ImportResult:
    """Check every feature of `document`, then write them all in one transaction; assets'
    national identifiers by `national_ids` (the national standard's rule,
    `standards.identifiers.national_id_issues`, handed in by the app, the CLI or the demo)."""
    spec = LAYERS[layer]
    problems = _Problems()
    items = _parse(spec, _features(document), settings, problems)
    problems.raise_if_any()
    if spec.sort_key is not None:
        items.sort(key=spec.sort_key)
    rows = spec.resolve(session, items, problems, national_ids)
    problems.raise_if_any()
    try:
        created, updated = _upsert(session, spec.model, rows)
        if spec.link is not None:
            spec.link(session, items)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return ImportResult(layer=layer.value, created=created, updated=updated)
