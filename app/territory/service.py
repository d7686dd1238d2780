"""Territory reads: layers as GeoJSON pages, and `locate` (where is this point?)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from geoalchemy2.shape import to_shape
from pydantic import BaseModel
from shapely.geometry import mapping
from sqlalchemy import ColumnElement, Row, Select, exists, func, select, true
from sqlalchemy.orm import Session, aliased

from app.access.rules import Permission, Principal
from app.core.database import bbox_intersects
from app.core.errors import NotFound, Problem
from app.core.geo import BBox
from app.core.pagination import Keyset
from app.territory.importer import Layer, NationalIdCheck, import_layer
from app.territory.models import (
    Asset,
    GridCell,
    Jurisdiction,
    RoadSegment,
    Shop,
    Unit,
    Workstation,
)
from app.territory.schemas import (
    AssetOut,
    GridCellOut,
    ImportResult,
    JurisdictionOut,
    RoadSegmentOut,
    ShopOut,
    UnitOut,
    WorkstationOut,
)

if TYPE_CHECKING:
    from app.settings import Settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Units in code order.
UNITS_BY_CODE = Keyset(Unit.code)


class UnknownUnit(Problem):
    code = "unknown_unit"
    status = 422
    title = "单位不存在"


class InvalidBBox(Problem):
    code = "invalid_bbox"
    status = 400
    title = "bbox 参数无效"


def in_sight(
    session: Session, principal: Principal, model: type[T], code: str, what: str
) -> tuple[T, str]:
    """The thing of a street-attached layer (segment, workstation, shop) with `code`, and
    its street's path; 404 also when the street is outside the caller's scope."""
    row = session.execute(
        select(model, Jurisdiction.path)
        .join(Jurisdiction, model.street_id == Jurisdiction.id)  # type: ignore[attr-defined]
        .where(model.code == code)  # type: ignore[attr-defined]
    ).first()
    if row is None or not principal.sees_path(row[1]):
        raise NotFound(f"{what} {code} 不存在")
    return row[0], row[1]


def parse_bbox(raw: str | None) -> BBox | None:
    """`min_lon,min_lat,max_lon,max_lat` as in OGC API Features, checked."""
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        raise InvalidBBox("bbox 应为 4 个数字：最小经度,最小纬度,最大经度,最大纬度") from None
    if len(values) != 4:
        raise InvalidBBox("bbox 应为 4 个数字：最小经度,最小纬度,最大经度,最大纬度")
    x1, y1, x2, y2 = values
    if not (-180 <= x1 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
        raise InvalidBBox("bbox 的最小值不能大于最大值，且须在经度 ±180、纬度 ±90 之内")
    return (x1, y1, x2, y2)


# --- layers as GeoJSON pages ---------------------------------------------------------------

_Parent = aliased(Jurisdiction)
_Street = aliased(Jurisdiction)


def _split_path(path: str) -> list[str]:
    return [c for c in path.split("/") if c]


class _Joined:
    """A row of a feature and labelled columns (`select(Shop, _Street.code.label(
    "street_code"))`) read as one object: a label, else the feature's attribute. Models
    validate from it (`ShopOut.model_validate(_Joined(row))`) as from the row itself."""

    __slots__ = ("_row",)

    def __init__(self, row: Row[*tuple[Any, ...]]) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        mapping = self._row._mapping
        return mapping[name] if name in mapping else getattr(self._row[0], name)


def _read(model: type[M]) -> Callable[[Row[*tuple[Any, ...]]], M]:
    """A layer's properties: `model` validated from the joined row."""
    return lambda row: model.model_validate(_Joined(row), from_attributes=True)


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """How to read one layer: its query, its filters and its properties."""

    model: Any
    query: Callable[[], Select[*tuple[Any, ...]]]
    properties: Callable[[Any], Any]
    filters: dict[str, Any]
    #: The jurisdiction path that decides who sees a feature (`None`: decided by place).
    scope_path: Any


READS: dict[Layer, ReadSpec] = {
    Layer.JURISDICTIONS: ReadSpec(
        Jurisdiction,
        lambda: select(Jurisdiction, _Parent.code.label("parent_code")).outerjoin(
            _Parent, Jurisdiction.parent_id == _Parent.id
        ),
        lambda r: JurisdictionOut(
            code=r.Jurisdiction.code,
            name=r.Jurisdiction.name,
            level=r.Jurisdiction.level,
            parent_code=r.parent_code,
            path=_split_path(r.Jurisdiction.path),
        ),
        {"level": Jurisdiction.level, "parent": _Parent.code},
        Jurisdiction.path,
    ),
    Layer.GRID_CELLS: ReadSpec(
        GridCell,
        lambda: (
            select(
                GridCell, _Parent.code.label("community_code"), _Street.code.label("street_code")
            )
            .join(_Parent, GridCell.community_id == _Parent.id)
            .outerjoin(_Street, _Parent.parent_id == _Street.id)
        ),
        _read(GridCellOut),
        {"community": _Parent.code, "street": _Street.code},
        _Parent.path,
    ),
    Layer.ROAD_SEGMENTS: ReadSpec(
        RoadSegment,
        lambda: select(RoadSegment, _Street.code.label("street_code")).join(
            _Street, RoadSegment.street_id == _Street.id
        ),
        _read(RoadSegmentOut),
        {
            "street": _Street.code,
            "grade": RoadSegment.grade,
            "excellence": RoadSegment.excellence,
            "road_name": RoadSegment.road_name,
        },
        _Street.path,
    ),
    Layer.ASSETS: ReadSpec(
        Asset,
        lambda: select(
            Asset, Unit.code.label("owner_unit_code"), Unit.name.label("owner_unit_name")
        ).join(Unit, Asset.owner_unit_id == Unit.id),
        _read(AssetOut),
        {"asset_type": Asset.asset_type, "owner": Unit.code},
        None,
    ),
    Layer.WORKSTATIONS: ReadSpec(
        Workstation,
        lambda: select(Workstation, _Street.code.label("street_code")).join(
            _Street, Workstation.street_id == _Street.id
        ),
        _read(WorkstationOut),
        {"street": _Street.code},
        _Street.path,
    ),
    Layer.SHOPS: ReadSpec(
        Shop,
        lambda: (
            select(Shop, _Street.code.label("street_code"), RoadSegment.code.label("segment_code"))
            .join(_Street, Shop.street_id == _Street.id)
            .join(RoadSegment, Shop.segment_id == RoadSegment.id)
        ),
        _read(ShopOut),
        {
            "street": _Street.code,
            "segment": RoadSegment.code,
            "pledge": Shop.pledge,
            "kind": Shop.kind,
        },
        _Street.path,
    ),
}


_ScopeRoot = aliased(Jurisdiction)


def _visible(spec: ReadSpec, principal: Principal) -> ColumnElement[bool]:
    """The caller's scope on a layer. Assets belong to no jurisdiction: they are seen
    where they lie, inside one of the caller's scope roots."""
    if spec.scope_path is not None:
        return principal.path_filter(spec.scope_path)
    if principal.unrestricted:
        return true()
    return exists().where(
        _ScopeRoot.path.in_(principal.scope_paths),
        func.ST_Intersects(_ScopeRoot.geom, spec.model.geom),
    )


def _feature(spec: ReadSpec, row: Any) -> dict[str, Any]:
    obj = row[0]
    return {
        "type": "Feature",
        "id": obj.code,
        "geometry": mapping(to_shape(obj.geom)),
        "properties": spec.properties(row),
    }


def list_features(
    session: Session,
    principal: Principal,
    layer: Layer,
    *,
    bbox: BBox | None,
    filters: dict[str, Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a layer's features in code order, and the cursor of the next page."""
    principal.require(Permission.TERRITORY_READ)
    spec = READS[layer]
    query = spec.query().where(_visible(spec, principal))
    for name, value in filters.items():
        if value is not None:
            query = query.where(spec.filters[name] == value)
    if bbox is not None:
        geom = spec.model.geom
        query = query.where(
            bbox_intersects(geom, *bbox),
            func.ST_Intersects(geom, func.ST_GeomFromText(_envelope_wkt(bbox), 4326)),
        )
    in_code_order = Keyset(spec.model.code)
    rows, next_cursor = in_code_order.rows(session, query, limit=limit, cursor=cursor)
    return [_feature(spec, r) for r in rows], next_cursor


def _envelope_wkt(bbox: BBox) -> str:
    x1, y1, x2, y2 = bbox
    if x1 == x2 or y1 == y2:
        return f"LINESTRING({x1} {y1}, {x2} {y2})"
    return f"POLYGON(({x1} {y1}, {x2} {y1}, {x2} {y2}, {x1} {y2}, {x1} {y1}))"


def get_feature(session: Session, principal: Principal, layer: Layer, code: str) -> dict[str, Any]:
    """One feature; 404 also when it lies outside the caller's scope."""
    principal.require(Permission.TERRITORY_READ)
    spec = READS[layer]
    row = session.execute(
        spec.query().where(spec.model.code == code, _visible(spec, principal))
    ).first()
    if row is None:
        raise NotFound(f"编码为 {code} 的对象不存在")
    return _feature(spec, row)


def _units() -> Select[Unit, str]:
    """Units with the code of their street office's jurisdiction, if any."""
    return select(Unit, _Street.code.label("jurisdiction_code")).outerjoin(
        _Street, Unit.jurisdiction_id == _Street.id
    )


def list_units(
    session: Session, principal: Principal, *, kind: str | None, limit: int, cursor: str | None
) -> tuple[list[UnitOut], str | None]:
    """Departments and units; district-wide ones for all, street offices by scope."""
    principal.require(Permission.TERRITORY_READ)
    query = _units().where(principal.path_filter(_Street.path, nullable=True))
    if kind is not None:
        query = query.where(Unit.kind == kind)
    rows, next_cursor = UNITS_BY_CODE.rows(session, query, limit=limit, cursor=cursor)
    return [_read(UnitOut)(row) for row in rows], next_cursor


def get_unit(session: Session, principal: Principal, code: str) -> UnitOut:
    principal.require(Permission.TERRITORY_READ)
    row = session.execute(
        _units().where(Unit.code == code, principal.path_filter(_Street.path, nullable=True))
    ).first()
    if row is None:
        raise NotFound(f"编码为 {code} 的单位不存在")
    return _read(UnitOut)(row)


def import_territory(
    session: Session, settings: Settings, principal: Principal, layer: Layer, document: Any,
    national_ids: NationalIdCheck,
) -> ImportResult:  # fmt: skip
    """An admin's import through the API (the CLI calls `import_layer` directly)."""
    principal.require(Permission.TERRITORY_MANAGE)
    return import_layer(session, settings, layer, document, national_ids)
