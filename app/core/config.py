"""Settings from environment variables, validated once at start-up.

Every variable is documented in README.md ("Configuration"). `DATABASE_URL` chooses the
engine; only `app.core.database` looks at which one it is.
"""

from __future__ import annotations

import ipaddress
import math
import os
import zoneinfo
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.moments import DEFAULT_ZONE, speak_zone

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
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "ROADCHIEF_DATABASE_READ_URL"),
        description="A PostgreSQL streaming replica (hot standby) of DATABASE_URL that "
        "assessment, its exports and rankings read from: postgresql+psycopg://...",
    )
    database_read_max_lag_seconds: float = Field(
        default=10.0,
        gt=0,
        le=24 * 3600,
        description="A read goes to the primary while the replica is further behind than this.",
    )
    spatialite_library: str = Field(
        default="mod_spatialite",
        description="SpatiaLite loadable module: a name on the loader path or a full path.",
    )
    media_dir: Path = Field(
        default=Path("var/media"),
        description="Where photos are stored (local store), and uploads staged (either store).",
    )
    photo_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where photo files live: media_dir, or an S3-compatible bucket (s3_*; "
        "credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The S3 API the server talks to (MinIO, OSS, COS...); unset: AWS S3.",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The S3 API as phones reach it, for presigned URLs (unset: s3_endpoint_url).",
    )
    s3_bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", description="The bucket."
    )
    s3_region: str | None = Field(default=None, description="The bucket's region, if any.")
    s3_prefix: str = Field(
        default="",
        pattern=r"^$|^[A-Za-z0-9._\-/]*/$",
        description="Key prefix in the bucket ('roadchief/'), to share one bucket.",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="path (MinIO, most on-premise stores) or virtual (Aliyun OSS requires it).",
    )
    photo_delivery: Literal["redirect", "proxy"] = Field(
        default="redirect",
        description="How photos in a bucket reach clients: a redirect to a short-lived "
        "presigned URL, or streamed through the API server.",
    )
    pg_bin_dir: Path | None = Field(
        default=None,
        description="`roadchief backup`: where pg_dump and pg_restore of the server's major "
        "version are (unset: /usr/lib/postgresql/<major>/bin, then the PATH).",
    )
    photo_url_seconds: int = Field(
        default=300, ge=10, le=7 * 24 * 3600, description="How long a presigned URL is valid."
    )
    time_zone: str = Field(default=DEFAULT_ZONE, description="Time zone spoken at the API's edges.")
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
    working_hours: str = Field(
        default="08:30-12:00,13:30-17:30",
        description="Working periods of a working day, local time: deadlines count these.",
    )
    photo_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    photo_max_pixels: int = Field(
        default=50_000_000,
        ge=10_000,
        le=200_000_000,
        description="Decompression-bomb limit: most pixels one photo may decode to.",
    )
    photo_max_jpeg_pixels: int = Field(
        default=250_000_000,
        ge=10_000,
        le=1_000_000_000,
        description="Largest sequential JPEG (a phone camera's, up to 200 megapixels) taken: "
        "it decodes reduced, within photo_max_pixels.",
    )
    photo_processing_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        ge=1,
        le=64,
        description="Photos decoded at once per process (default: the CPU count).",
    )
    photo_display_px: int = Field(default=1600, ge=320, le=4096)
    photo_thumbnail_px: int = Field(default=320, ge=64, le=1024)
    photo_far_m: float = Field(
        default=300.0,
        gt=0,
        description="A photo taken further than this from the point is flagged.",
    )
    photo_old_hours: float = Field(
        default=24.0, gt=0, description="A photo taken this long before the report is flagged."
    )
    photo_orphan_hours: float = Field(
        default=24.0, gt=0, description="Uploaded photos no report uses are removed after this."
    )
    report_max_photos: int = Field(default=9, ge=1, le=30)
    report_max_accuracy_m: float = Field(
        default=500.0, gt=0, description="A fix less accurate than this is refused."
    )
    device_clock_skew_minutes: int = Field(
        default=10, ge=0, le=24 * 60, description="How far a device's clock may run ahead."
    )
    duplicate_radius_m: float = Field(
        default=30.0,
        gt=0,
        le=1000,
        description="An open case of the same category this close "
        "to a new report is the same problem.",
    )
    verify_max_distance_m: float = Field(
        default=200.0, gt=0, le=5000, description="Verification must be done this close."
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

    deadline_warning_fraction: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="A unit is warned when this share of its handling time is used up.",
    )
    escalation_step_hours: float = Field(
        default=8.0,
        gt=0,
        le=200,
        description="Working hours an overdue task waits before escalating one level further.",
    )
    reopen_days: int = Field(
        default=30, ge=0, le=365, description="Days after closing that a case may be reopened."
    )
    background_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How often the service sweeps deadlines, measures patrols again and "
        "delivers webhooks (0: never; then run `roadchief workflow sweep`, `roadchief patrols "
        "remeasure` and `roadchief webhooks deliver` from cron).",
    )
    patrol_max_accuracy_m: float = Field(
        default=50.0, gt=0, le=1000, description="A patrol fix less accurate is left out."
    )
    patrol_max_speed_mps: float = Field(
        default=35.0,
        gt=0,
        le=300,
        description="A fix further from the last good one than this speed allows is a jump.",
    )
    patrol_fix_grace_minutes: int = Field(
        default=30,
        ge=0,
        le=24 * 60,
        description="An ended patrol still takes fixes (an offline queue) for this long.",
    )
    patrol_max_fixes_per_minute: int = Field(
        default=60,
        ge=1,
        le=600,
        description="A patrol holds at most this many fixes per minute it has lasted "
        "(plus one batch): a phone records one a second.",
    )
    patrol_offline_start_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 7,
        description="A patrol may be started this long ago (an offline start); no earlier.",
    )
    patrol_coverage_buffer_m: float = Field(
        default=30.0,
        gt=0,
        le=200,
        description="A segment's part this close to the track is covered.",
    )
    patrol_complete_share: float = Field(
        default=0.8, gt=0, le=1, description="Share of a segment to cover for a complete patrol."
    )
    workstation_radius_m: float = Field(
        default=100.0, gt=0, le=1000, description="Check in and out this close to a workstation."
    )
    shop_visit_radius_m: float = Field(
        default=50.0, gt=0, le=1000, description="A shop visit is recorded this close to the shop."
    )
    shop_visits_per_week: int = Field(
        default=1,
        ge=1,
        le=7,
        description="Visits each street-front shop needs a week (门前四包 checks), by its "
        "segment's ground-level chief for the chief's own duty.",
    )
    assessment_weights: str = Field(
        default="on_time_handling:30,closure:20,on_time_closure:20,rework:10,"
        "on_time_sign_for:10,extension:5,whistle_on_time:5",
        description="Weights of the rates in the composite score (综合指标值), summing to 100.",
    )
    assessment_min_cases: int = Field(
        default=5,
        ge=0,
        description="A unit with fewer registered cases (departments: tasks) is not ranked.",
    )
    assessment_ranking_weights: str = Field(
        default="cases:60,inspections:40",
        description="How a ranking combines the case KPI score and the inspection score.",
    )
    assessment_group_weights: str = Field(
        default="streets:70,units:30",
        description="The district's score from its street offices' and departments' means "
        "(Boshan: 70 / 30).",
    )
    assessment_auto_close_days: int | None = Field(
        default=3,
        ge=0,
        le=60,
        description="Close (freeze) last month and last week this many days after they end; "
        "empty: only by hand (`roadchief assessment close`).",
    )
    assessment_red_flags: int = Field(default=1, ge=0, le=20, description="红旗: the best N.")
    assessment_black_flags: int = Field(default=1, ge=0, le=20, description="黑旗: the worst N.")
    inspection_checklist: str | None = Field(
        default=None,
        description="A YAML checklist for field inspections; the shipped Guancheng shape "
        "(10 categories, 46 items) if unset.",
    )
    inspection_late_hours: float = Field(
        default=72.0, gt=0, le=24 * 31, description="An inspection may be entered this late."
    )
    inspection_radius_m: float = Field(
        default=100.0, gt=0, le=1000, description="A deduction is placed this close to the segment."
    )
    excellence_thresholds: str = Field(
        default="ultimate:95,outstanding:90,excellent:85",
        pattern=r"^(ultimate|outstanding|excellent):\d+(\.\d+)?"
        r"(,(ultimate|outstanding|excellent):\d+(\.\d+)?)*$",
        description="The inspection score a segment needs for each 千百十 grade "
        "(极致, 卓越, 优秀) over a period.",
    )
    shop_credit_rules: str = Field(
        default="visit_failed_item:-2,visit_passed:1,red_flag:5,black_flag:-10",
        description="How a shop's credit score (诚信分) moves, per reason.",
    )
    shop_blacklist_below: float = Field(
        default=60.0, ge=0, le=100, description="Below this credit a shop is blacklisted."
    )
    patrol_duties: str = Field(
        default="1:daily:1:any,2:weekly:3:any,3:weekly:2:each",
        description="Patrol duty per road-chief level, 'level:daily|weekly:days:each|any': "
        "on every working day, or on that many days a week, a complete patrol of each of "
        "one's segments (each), or of at least one of them (any).",
    )
    body_max_bytes: int = Field(
        default=1024 * 1024,
        ge=16 * 1024,
        le=64 * 1024 * 1024,
        description="Largest request body of a route that declares no larger limit.",
    )
    territory_import_max_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="Largest GeoJSON document a territory import over the API takes.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Time a request body has to arrive, extended by a second for every "
        "body_min_rate bytes received; slower bodies are cut off (408).",
    )
    body_min_rate: int = Field(
        default=16 * 1024,
        ge=1,
        description="Bytes a second a slow body must average beyond body_timeout_seconds.",
    )
    server_limit_concurrency: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="`roadchief serve`: connections and requests a worker holds at once; "
        "beyond it uvicorn answers 503.",
    )
    server_timeout_keep_alive_seconds: int = Field(
        default=5, ge=1, le=300, description="`roadchief serve`: idle keep-alive connections."
    )
    server_timeout_graceful_shutdown_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="`roadchief serve`: how long a stopping worker waits for open requests.",
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="The longest one delivery attempt may take, from connecting to the "
        "answer's headers, however slowly the receiver answers.",
    )
    webhook_allowed_networks: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(),
        description="Networks webhooks may reach although they are not public (loopback, "
        "private, link-local...): 'CIDR,CIDR'. Empty: public addresses only.",
    )
    metrics_networks: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        description="Client networks that may read /metrics and /readyz's versions "
        "('CIDR,CIDR'; default loopback; empty: none).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="A bearer token that also opens /metrics (Prometheus's "
        "authorization.credentials), from any address.",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs access tokens (≥ 32 characters). Unset: a random key kept in the "
        "database (signing_keys), which every server of a deployment shares.",
    )
    secret_key_file: Path = Field(
        default=Path("var/secret_key"),
        description="An older single-host key file: the database's key is taken from it "
        "when the database has none yet, so tokens it signed stay valid.",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    #: A refresh token presented again this soon after its rotation, while its successor
    #: is still unused, is a phone retrying after a lost answer, not a thief.
    refresh_retry_seconds: int = Field(default=30, ge=0, le=300)
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024, le=1048576)
    login_free_failures: int = Field(
        default=3, ge=1, description="Per account (and per account and address), before slowing."
    )
    login_lock_failures: int = Field(
        default=10, ge=2, description="Per account and address, then locked."
    )
    login_address_free_failures: int = Field(default=20, ge=1)
    login_address_lock_failures: int = Field(default=100, ge=2)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_known_address_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="An address the account signed in from this recently is not slowed by "
        "failures from elsewhere.",
    )
    token_state_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a process trusts what it last read of a user's token state "
        "(disabled, tokens valid after); 0 reads it on every request.",
    )
    # --- the web console (/console) ---
    console_secure_cookies: bool = Field(
        default=True,
        description="The console's cookies are Secure (HTTPS only; browsers also accept "
        "them on http://localhost). Turn off only behind a plain-HTTP test setup.",
    )
    console_tile_url: str | None = Field(
        default=None,
        description="Base map tiles for the console's map ('https://.../{z}/{x}/{y}.png'); "
        "none: the territory itself is the base map (works with no internet).",
    )
    console_tile_coordinates: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="The tiles' datum: gcj02 for Amap and Tencent tiles (the console shifts "
        "what it draws onto them), wgs84 for Tianditu (CGCS2000) and OpenStreetMap.",
    )
    console_tile_attribution: str = Field(default="", description="Shown under the map.")
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed ('10.0.0.5,192.168.1.0/24'); none by default.",
    )

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

    @field_validator("database_read_url", mode="before")
    @classmethod
    def _replica_engine(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # unset, or set to nothing: everything reads from the primary
        # A streaming replica is PostgreSQL's; a SQLite file has none.
        if not str(value).startswith("postgresql"):
            raise ValueError("must be postgresql+psycopg://<user>@<host>/<db>")
        if not str(info.data.get("database_url", "")).startswith("postgresql"):
            raise ValueError("a read replica needs DATABASE_URL on PostgreSQL too")
        return value

    @field_validator(
        "trusted_proxies", "webhook_allowed_networks", "metrics_networks", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
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

    @field_validator("assessment_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        from app.assessment.kpis import parse_weights  # the KPI table is the one truth

        try:
            parse_weights(value)
        except Exception as exc:
            raise ValueError(str(getattr(exc, "detail", exc))) from exc
        return value

    @field_validator("assessment_ranking_weights", "assessment_group_weights")
    @classmethod
    def _pair_weights(cls, value: str, info: ValidationInfo) -> str:
        from app.assessment.rankings import parse_weights

        pairs = {"assessment_ranking_weights": ("cases", "inspections"),
                 "assessment_group_weights": ("streets", "units")}  # fmt: skip
        names = pairs[info.field_name or ""]
        try:
            parse_weights(value, names)
        except ValueError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("shop_credit_rules")
    @classmethod
    def _credit_rules(cls, value: str) -> str:
        from app.shops.credit import parse_rules

        parse_rules(value)
        return value

    @field_validator("patrol_duties")
    @classmethod
    def _duties(cls, value: str) -> str:
        try:
            parse_duties(value)
        except ValueError as exc:
            raise ValueError(f"expected 'level:daily|weekly:days:each|any,...' ({exc})") from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _periods(cls, value: str) -> str:
        try:
            periods = parse_periods(value)
        except ValueError as exc:
            raise ValueError("expected 'HH:MM-HH:MM,HH:MM-HH:MM'") from exc
        flat = [t for period in periods for t in period]
        if flat != sorted(flat) or any(a == b for a, b in periods):
            raise ValueError("periods must be non-empty, in order and not overlapping")
        return value

    @model_validator(mode="after")
    def _store_complete(self) -> Settings:
        if self.photo_store == "s3" and not self.s3_bucket:
            raise ValueError("ROADCHIEF_PHOTO_STORE=s3 needs ROADCHIEF_S3_BUCKET")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


def parse_periods(text: str) -> tuple[tuple[time, time], ...]:
    """'08:30-12:00,13:30-17:30' → ((08:30, 12:00), (13:30, 17:30))."""
    periods = []
    for part in text.split(","):
        a, b = (time.fromisoformat(x.strip()) for x in part.split("-"))
        periods.append((a, b))
    return tuple(periods)


@dataclass(frozen=True)
class PatrolDuty:
    """How often a chief of one level must patrol, and what (巡查频次)."""

    period: Literal["daily", "weekly"]
    #: daily: patrols each working day; weekly: days with a patrol each week (Mon–Sun).
    days: int
    #: each: every one of the chief's segments, each on its own; any: a day counts when a
    #: patrol of the chief's completely covered at least one of their segments (a street
    #: head's daily round of the area, 每日巡查辖区各路段).
    scope: Literal["each", "any"] = "each"


def named_numbers(text: str) -> dict[str, float]:
    """'a:30,b:-2.5' → {"a": 30.0, "b": -2.5}: the shape of every weights-and-rules setting.
    Raises ValueError naming the part that is not `name:number`, not finite, or repeated;
    what the names and numbers may be is the caller's to check."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = (x.strip() for x in part.partition(":"))
        try:
            number = float(value)
        except ValueError:
            raise ValueError(part) from None
        if not sep or not name or not math.isfinite(number) or name in out:
            raise ValueError(part)
        out[name] = number
    return out


def parse_duties(text: str) -> dict[int, PatrolDuty]:
    """'1:daily:1:any,3:weekly:2' → {1: PatrolDuty('daily', 1, 'any'),
    3: PatrolDuty('weekly', 2, 'each')} (the scope defaults to each)."""
    duties: dict[int, PatrolDuty] = {}
    for part in text.split(","):
        level, period, days, *rest = (x.strip() for x in part.split(":"))
        scope = rest[0] if rest else "each"
        if period not in ("daily", "weekly") or int(level) not in (1, 2, 3) or int(days) < 1:
            raise ValueError(part)
        if (period == "weekly" and int(days) > 7) or len(rest) > 1 or scope not in ("each", "any"):
            raise ValueError(part)
        duties[int(level)] = PatrolDuty(period, int(days), scope)  # type: ignore[arg-type]
    return duties


class SettingsError(RuntimeError):
    """A bad environment variable, explained for the operator."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (their zone is the one answers speak, `moments`); raises
    SettingsError naming each bad variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            var = (
                "DATABASE_URL" if field.lower() == "database_url" else f"ROADCHIEF_{field.upper()}"
            )
            lines.append(f"  {var}: {err['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
    speak_zone(settings.zone)
    return settings
