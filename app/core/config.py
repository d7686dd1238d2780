"""Settings from environment variables, validated once at start-up.

Every variable is documented in README.md ("Configuration"). `DATABASE_URL` chooses the
engine; only `app.core.database` looks at which one it is.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BBox = tuple[float, float, float, float]

#: China's extent, a safe outer bound until a deployment sets its own service area.
CHINA_BBOX: BBox = (73.0, 17.0, 136.0, 54.0)


class Settings(BaseSettings):
    """Runtime configuration (environment variables, prefix ``ROADCHIEF_``)."""

    model_config = SettingsConfigDict(
        env_prefix="ROADCHIEF_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str = Field(
        default="sqlite:///var/roadchief.sqlite3",
        validation_alias=AliasChoices("DATABASE_URL", "ROADCHIEF_DATABASE_URL"),
        description="SQLAlchemy URL: sqlite:///path (SpatiaLite) or postgresql+psycopg://...",
    )
    spatialite_library: str = Field(
        default="mod_spatialite",
        description="SpatiaLite loadable module: a name on the loader path or a full path.",
    )
    media_dir: Path = Field(default=Path("var/media"), description="Where photos are stored.")
    time_zone: str = Field(
        default="Asia/Shanghai", description="Time zone spoken at the API's edges."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    service_area: Annotated[BBox, NoDecode] = Field(
        default=CHINA_BBOX,
        description="Outer bound of all geometry: 'min_lon,min_lat,max_lon,max_lat'.",
    )
    locate_segment_radius_m: float = Field(default=50.0, gt=0, le=1000)
    locate_asset_radius_m: float = Field(default=30.0, gt=0, le=1000)
    locate_asset_limit: int = Field(default=5, ge=0, le=50)
    routing_asset_max_distance_m: float = Field(
        default=200.0,
        gt=0,
        le=5000,
        description="An asset named in a report must lie this close to the reported point.",
    )
    whistle_report_in_minutes: int = Field(
        default=30, ge=5, le=24 * 60, description="Default time to report in on a whistle."
    )
    whistle_report_in_radius_m: float = Field(
        default=150.0, gt=0, le=2000, description="A report-in must be this close to the place."
    )
    whistle_place_max_distance_m: float = Field(
        default=100.0,
        gt=0,
        le=1000,
        description="A whistle's place must be this close to the chief's road segment.",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs access tokens (≥ 32 characters). Unset: a random key is kept in "
        "secret_key_file, created on first use.",
    )
    secret_key_file: Path = Field(default=Path("var/secret_key"))
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    #: A refresh token presented again this soon after its rotation, while its successor
    #: is still unused, is a phone retrying after a lost answer, not a thief.
    refresh_retry_seconds: int = Field(default=30, ge=0, le=300)
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024, le=1048576)
    login_free_failures: int = Field(default=3, ge=1, description="Per account, before slowing.")
    login_lock_failures: int = Field(default=10, ge=2, description="Per account, then locked.")
    login_address_free_failures: int = Field(default=20, ge=1)
    login_address_lock_failures: int = Field(default=100, ge=2)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_engine(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql")):
            raise ValueError("must be sqlite:///<file> or postgresql+psycopg://<user>@<host>/<db>")
        return value

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

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class SettingsError(RuntimeError):
    """A bad environment variable, explained for the operator."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; raises SettingsError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            var = (
                "DATABASE_URL" if field.lower() == "database_url" else f"ROADCHIEF_{field.upper()}"
            )
            lines.append(f"  {var}: {err['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
