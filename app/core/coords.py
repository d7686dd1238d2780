"""GCJ-02 (火星坐标, China's obfuscated datum used by Amap, Tencent and WeChat maps) ↔ WGS 84.

The forward transform is the published formula every map SDK in China implements; the
reverse is its numerical inverse (fixed-point iteration to ~1 mm). No maintained Python
package offers it (the PyPI ones are single-release and unmaintained), hence these few
lines, tested against the forward formula and a known point. Outside China the two datums
coincide.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

_A = 6378245.0
_EE = 0.00669342162296594323


def _outside_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    dlat = _shift_lat(lon - 105.0, lat - 35.0)
    dlon = _shift_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """The WGS 84 point whose GCJ-02 image is (lon, lat), to about a millimetre."""
    if _outside_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < 1e-9 and abs(dlat) < 1e-9:
            break
    return wlon, wlat


class CoordinateSystem(StrEnum):
    """WGS 84 from GPS, or GCJ-02 (火星坐标) from a Chinese map SDK."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"


def to_wgs84(lon: float, lat: float, system: CoordinateSystem) -> tuple[float, float]:
    """A point sent by a phone, in WGS 84 whichever system it came in."""
    return gcj02_to_wgs84(lon, lat) if system is CoordinateSystem.GCJ02 else (lon, lat)


#: The flag every point of a request carries (a body field or a query parameter).
CoordinateSystemFlag = Annotated[
    CoordinateSystem,
    Field(
        description="The datum of `lon`/`lat`: `wgs84` (GPS) or `gcj02` (火星坐标, from Amap, "
        "Tencent or WeChat maps), converted to WGS 84 before use. Any other value is 422."
    ),
]


class PointIn(BaseModel):
    """A point as a phone or a map sends it (坐标): WGS 84 from GPS, or GCJ-02.

    Every request that takes a point takes this type: a body inherits it (`lon`, `lat` and
    `coordinate_system` stay top-level fields), a query declares it as
    `Annotated[PointIn, Query()]`. `wgs84()` is the one conversion; the service area
    check is `app.territory.locator.wgs84_in_area`.
    """

    lon: float = Field(description="Longitude, in `coordinate_system`.", examples=[113.6268])
    lat: float = Field(description="Latitude, in `coordinate_system`.", examples=[34.8104])
    coordinate_system: CoordinateSystemFlag = CoordinateSystem.WGS84

    def wgs84(self) -> tuple[float, float]:
        return to_wgs84(self.lon, self.lat, self.coordinate_system)
