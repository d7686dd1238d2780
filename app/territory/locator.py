"""`locate`: where is this point? (定位) Jurisdictions, grid cell, nearest segment and assets.

Every report and every patrol fix is placed through here, so it is on the hot path: the
statements are built once with bound parameters (SQLAlchemy then reuses their compiled
form), each asks its spatial index first, and the distances of the candidates are
measured in one vectorised pass in Python, the same way on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import shapely
from sqlalchemy import Float, Row, bindparam, func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.core.coords import PointIn
from app.core.database import bbox_intersects, wgs84_point
from app.core.errors import Problem
from app.core.geo import LocalFrame, bbox_around, point_issue
from app.territory.models import Asset, GridCell, Jurisdiction, JurisdictionLevel, RoadSegment, Unit
from app.territory.schemas import LocatedAsset, LocatedSegment, Location, PlaceRef

if TYPE_CHECKING:
    from app.settings import Settings


class InvalidLocation(Problem):
    code = "invalid_location"
    status = 422
    title = "位置无效"


class OutsideServiceArea(Problem):
    code = "outside_service_area"
    status = 422
    title = "位置超出服务范围"


_DEPTH = {
    JurisdictionLevel.DISTRICT: 0,
    JurisdictionLevel.STREET: 1,
    JurisdictionLevel.COMMUNITY: 2,
}

# Bound parameters shared by the statements below.
_lon, _lat = bindparam("lon", type_=Float), bindparam("lat", type_=Float)
_point = wgs84_point(_lon, _lat)
_box = tuple(bindparam(n, type_=Float) for n in ("min_lon", "min_lat", "max_lon", "max_lat"))

_CONTAINING_PLACES = (
    select(Jurisdiction.code, Jurisdiction.name, Jurisdiction.level)
    .where(
        bbox_intersects(Jurisdiction.geom, _lon, _lat, _lon, _lat),
        func.ST_Intersects(Jurisdiction.geom, _point),
    )
    .order_by(Jurisdiction.code)
)

_GRID_CELL = (
    select(GridCell.code)
    .where(
        bbox_intersects(GridCell.geom, _lon, _lat, _lon, _lat),
        func.ST_Intersects(GridCell.geom, _point),
    )
    # On a shared edge a point lies in two or four cells: the lowest code wins.
    .order_by(GridCell.code)
    .limit(1)
)

_SEGMENT_CANDIDATES = select(
    RoadSegment.code,
    RoadSegment.name,
    RoadSegment.road_name,
    RoadSegment.grade,
    func.ST_AsBinary(RoadSegment.geom, type_=None).label("wkb"),
).where(bbox_intersects(RoadSegment.geom, *_box))

_ASSET_CANDIDATES = (
    select(
        Asset.code,
        Asset.asset_type,
        Unit.code.label("owner_code"),
        Unit.name.label("owner_name"),
        func.ST_AsBinary(Asset.geom, type_=None).label("wkb"),
    )
    .join(Unit, Asset.owner_unit_id == Unit.id)
    .where(bbox_intersects(Asset.geom, *_box))
)


def _box_params(frame: LocalFrame, radius_m: float) -> dict[str, float]:
    x1, y1, x2, y2 = bbox_around(frame.lon0, frame.lat0, radius_m)
    return {"min_lon": x1, "min_lat": y1, "max_lon": x2, "max_lat": y2}


def _point_params(lon: float, lat: float) -> dict[str, float]:
    return {"lon": lon, "lat": lat}


def _within(
    frame: LocalFrame, rows: Sequence[Row[Any]], radius_m: float
) -> list[tuple[float, Any]]:
    """(distance in metres to 0.01, row) within the radius, nearest first, ties by code."""
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows])
    hits = [
        (round(d, 2), r)
        for d, r in zip(frame.distances_m(geoms), rows, strict=True)
        if d <= radius_m
    ]
    return sorted(hits, key=lambda h: (h[0], h[1].code))


def containing_places(session: Session, lon: float, lat: float) -> list[PlaceRef]:
    """The jurisdictions holding the point, district first."""
    rows = session.connection().execute(_CONTAINING_PLACES, _point_params(lon, lat)).all()
    # On a shared border a point touches two places of a level: the lower code wins.
    first: dict[JurisdictionLevel, PlaceRef] = {}
    for code, name, level in rows:
        first.setdefault(level, PlaceRef(code=code, name=name, level=level))
    return sorted(first.values(), key=lambda p: _DEPTH[p.level])


def check_coordinates(settings: Settings, lon: float, lat: float) -> None:
    """422 unless (lon, lat) is a WGS 84 coordinate inside the service area's box."""
    issue = point_issue(lon, lat, settings.service_area)
    if issue is not None:
        problem = OutsideServiceArea if issue.code == "outside_service_area" else InvalidLocation
        raise problem(issue.message)


def wgs84_in_area(settings: Settings, point: PointIn) -> tuple[float, float]:
    """The point in WGS 84, or 422 unless it is a coordinate inside the service area."""
    lon, lat = point.wgs84()
    check_coordinates(settings, lon, lat)
    return lon, lat


def place_point(session: Session, settings: Settings, lon: float, lat: float) -> list[PlaceRef]:
    """The jurisdictions holding a reported point, district first, or the 422 saying why
    the point cannot be taken (not a coordinate, outside every jurisdiction)."""
    check_coordinates(settings, lon, lat)
    places = containing_places(session, lon, lat)
    if not places:
        raise OutsideServiceArea("该位置不在本系统任何辖区内")
    return places


def grid_cell_code(session: Session, lon: float, lat: float) -> str | None:
    """The unit grid cell (单元网格) holding the point."""
    return session.connection().execute(_GRID_CELL, _point_params(lon, lat)).scalar()


def nearest_segment(session: Session, frame: LocalFrame, radius_m: float) -> LocatedSegment | None:
    """The road segment nearest the frame's centre, if one is within `radius_m`."""
    rows = session.connection().execute(_SEGMENT_CANDIDATES, _box_params(frame, radius_m)).all()
    hits = _within(frame, rows, radius_m)
    if not hits:
        return None
    distance, r = hits[0]
    return LocatedSegment(
        code=r.code, name=r.name, road_name=r.road_name, grade=r.grade, distance_m=distance
    )


def nearest_assets(
    session: Session, frame: LocalFrame, radius_m: float, limit: int
) -> list[LocatedAsset]:
    """Up to `limit` assets within `radius_m`, nearest first."""
    if limit == 0:
        return []
    rows = session.connection().execute(_ASSET_CANDIDATES, _box_params(frame, radius_m)).all()
    return [
        LocatedAsset(
            code=r.code,
            asset_type=r.asset_type,
            owner_unit_code=r.owner_code,
            owner_unit_name=r.owner_name,
            distance_m=d,
        )
        for d, r in _within(frame, rows, radius_m)[:limit]
    ]


def locate(
    session: Session,
    principal: Principal,
    settings: Settings,
    lon: float,
    lat: float,
    *,
    segment_radius_m: float | None = None,
    asset_radius_m: float | None = None,
    asset_limit: int | None = None,
) -> Location:
    """Jurisdiction path, grid cell, nearest road segment and nearest assets of a point.

    Any principal who reads territory may locate any point in the service area: the
    phone must be able to learn that a point lies outside its user's scope.
    """
    principal.require(Permission.TERRITORY_READ)
    places = place_point(session, settings, lon, lat)
    by_level = {p.level: p for p in places}
    frame = LocalFrame(lon, lat)
    return Location(
        lon=lon,
        lat=lat,
        jurisdictions=places,
        street=by_level.get(JurisdictionLevel.STREET),
        community=by_level.get(JurisdictionLevel.COMMUNITY),
        grid_cell_code=grid_cell_code(session, lon, lat),
        segment=nearest_segment(
            session, frame, segment_radius_m or settings.locate_segment_radius_m
        ),
        nearby_assets=nearest_assets(
            session,
            frame,
            asset_radius_m or settings.locate_asset_radius_m,
            settings.locate_asset_limit if asset_limit is None else asset_limit,
        ),
    )
