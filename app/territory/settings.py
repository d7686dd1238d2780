"""The territory's settings: the service area every geometry must lie in, and how far
`locate` looks (`ROADCHIEF_SERVICE_AREA`, `ROADCHIEF_LOCATE_*`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.core.config import ENV_CONFIG
from app.core.geo import BBox

#: China's extent, a safe outer bound until a deployment sets its own service area.
CHINA_BBOX: BBox = (73.0, 17.0, 136.0, 54.0)


class TerritorySettings(BaseSettings):
    """The service area and the locator's reach."""

    model_config = ENV_CONFIG

    service_area: Annotated[BBox, NoDecode] = Field(
        default=CHINA_BBOX,
        description="Outer bound of all geometry: 'min_lon,min_lat,max_lon,max_lat'.",
    )
    locate_segment_radius_m: float = Field(default=50.0, gt=0, le=1000)
    locate_asset_radius_m: float = Field(default=30.0, gt=0, le=1000)
    locate_asset_limit: int = Field(default=5, ge=0, le=50)

    @field_validator("service_area", mode="before")
    @classmethod
    def _parse_bbox(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if len(parts) != 4:
                raise ValueError("expected 'min_lon,min_lat,max_lon,max_lat'")
            return tuple(float(p) for p in parts)
        return value

    @field_validator("service_area")
    @classmethod
    def _check_bbox(cls, value: BBox) -> BBox:
        min_lon, min_lat, max_lon, max_lat = value
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise ValueError("must be a non-empty box inside ±180/±90 (min before max)")
        return value
