"""Geometry helpers shared by every domain: validation on the way in, metric distances.

All geometry is WGS 84 (EPSG:4326) longitude/latitude. Distances are measured here, in
one way for both engines, because SpatiaLite's and PostGIS's ellipsoidal point-to-line
distances disagree by metres; the databases only find candidates through their indexes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

#: A box of longitudes and latitudes: (min_lon, min_lat, max_lon, max_lat).
BBox = tuple[float, float, float, float]

WGS84_SRID = 4326
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
_GEOD = Geod(ellps="WGS84")
#: Slack when checking that one shape lies inside another (≈1 cm), for shared edges.
COVER_TOLERANCE_DEG = 1e-7


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at `lat` on the WGS 84 ellipsoid."""
    phi = math.radians(lat)
    w = 1 - _E2 * math.sin(phi) ** 2
    meridional = _A * (1 - _E2) / w**1.5
    prime_vertical = _A / math.sqrt(w)
    return math.radians(prime_vertical * math.cos(phi)), math.radians(meridional)


def bbox_around(lon: float, lat: float, radius_m: float) -> BBox:
    """The lon/lat box that holds every point within `radius_m` of (lon, lat)."""
    per_lon, per_lat = metres_per_degree(lat)
    # A little slack for the curvature over the radius; candidates are re-checked exactly.
    dlon, dlat = radius_m * 1.001 / per_lon, radius_m * 1.001 / per_lat
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """A tangent plane in metres centred on (lon0, lat0).

    Accurate to millimetres within a few kilometres, which is the scale of every
    "nearest" question this service asks (tens to hundreds of metres).
    """

    lon0: float
    lat0: float

    def distance_m(self, geom: BaseGeometry) -> float:
        """Distance in metres from the frame's centre to one geometry."""
        return self.distances_m([geom])[0]

    def distances_m(self, geoms: Sequence[BaseGeometry]) -> list[float]:
        """Distance in metres from the frame's centre to each geometry.

        One vectorised pass over all the coordinates (shapely 2), not a loop per shape:
        this sits on the `locate` hot path.
        """
        if len(geoms) == 0:
            return []
        origin, scale = self._origin_scale()
        local = shapely.transform(np.asarray(geoms, dtype=object), lambda xy: (xy - origin) * scale)
        distances: list[float] = shapely.distance(_ORIGIN, local).tolist()
        return distances

    def to_local(self, geom: BaseGeometry) -> BaseGeometry:
        """The geometry in the frame's metres (x east, y north)."""
        origin, scale = self._origin_scale()
        return shapely.transform(geom, lambda xy: (xy - origin) * scale)

    def to_lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        """Back from the frame's metres to WGS 84 longitude/latitude."""
        origin, scale = self._origin_scale()
        return shapely.transform(geom, lambda xy: xy / scale + origin)

    def _origin_scale(self) -> tuple[Any, Any]:
        per_lon, per_lat = metres_per_degree(self.lat0)
        return np.array([self.lon0, self.lat0]), np.array([per_lon, per_lat])


_ORIGIN = shapely.Point(0.0, 0.0)


def geodesic_length_m(geom: BaseGeometry) -> float:
    """Length on the WGS 84 ellipsoid, in metres."""
    return float(_GEOD.geometry_length(geom))


# --- validation on the way in --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeometryIssue:
    """Why a geometry was refused: a stable code and a Chinese message."""

    code: str
    message: str


_TYPE_NAMES = {
    "Point": "点",
    "LineString": "线",
    "Polygon": "多边形",
    "MultiPolygon": "多多边形",
    "MultiLineString": "多线",
    "MultiPoint": "多点",
}


def _coords(obj: Any) -> Iterable[Sequence[Any]]:
    """Every position in a GeoJSON coordinates array, however deep."""
    if isinstance(obj, list | tuple) and obj and isinstance(obj[0], int | float):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _coords(item)


def parse_geometry(
    raw: Any, allowed: Sequence[str], service_area: BBox
) -> tuple[BaseGeometry | None, GeometryIssue | None]:
    """Parse and check a GeoJSON geometry object.

    Refuses: a malformed object, a type not in `allowed`, coordinates beyond ±180/±90,
    outside the service area's box, or an invalid shape (self-intersection, ...).
    """
    names = "、".join(_TYPE_NAMES.get(a, a) for a in allowed)
    if not isinstance(raw, dict) or "type" not in raw or "coordinates" not in raw:
        return None, GeometryIssue("geometry_malformed", f"缺少几何图形或格式错误（应为{names}）")
    if raw["type"] not in allowed:
        return None, GeometryIssue(
            "geometry_type_not_allowed", f"几何类型 {raw['type']} 不允许（应为{names}）"
        )
    for pos in _coords(raw["coordinates"]):
        if issue := _position_issue(pos):
            return None, issue
    try:
        geom = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
        return None, GeometryIssue("geometry_malformed", "几何图形的坐标结构不正确")
    if geom.is_empty:
        return None, GeometryIssue("geometry_malformed", "几何图形为空")
    if geom.has_z:
        geom = shapely.force_2d(geom)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        return None, GeometryIssue("geometry_invalid", f"几何图形无效：{reason}")
    return (None, issue) if (issue := _outside(geom.bounds, service_area)) else (geom, None)


def point_issue(lon: float, lat: float, service_area: BBox) -> GeometryIssue | None:
    """The same checks for a bare longitude/latitude pair (without building a shape: a
    patrol sends thousands of them a second)."""
    return _position_issue((lon, lat)) or _outside((lon, lat, lon, lat), service_area)


def _position_issue(pos: Sequence[Any]) -> GeometryIssue | None:
    if len(pos) < 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in pos):
        return GeometryIssue("geometry_malformed", "坐标必须是数字对 [经度, 纬度]")
    if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
        return GeometryIssue(
            "coordinates_out_of_range", f"坐标 {pos[0]}, {pos[1]} 超出经度 ±180、纬度 ±90 的范围"
        )
    return None


def _outside(bounds: Sequence[float], service_area: BBox) -> GeometryIssue | None:
    min_lon, min_lat, max_lon, max_lat = service_area
    x1, y1, x2, y2 = bounds
    if x1 < min_lon or y1 < min_lat or x2 > max_lon or y2 > max_lat:
        return GeometryIssue("outside_service_area", "位置超出本系统的服务范围")
    return None
