"""The core's settings (database, server, logging, auth secrets), validated once at start-up,
and what every domain's settings share.

Each domain declares its own settings beside its code (`app/<domain>/settings.py`, parsed
once into typed values); `app.settings` composes them into the one `Settings` the app builds
at start. Every variable keeps its `ROADCHIEF_` name and is documented in README.md
("Configuration"). `DATABASE_URL` chooses the engine; only `app.core.database` looks at
which one it is.
"""

from __future__ import annotations

import ipaddress
import math
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.moments import DEFAULT_ZONE

if TYPE_CHECKING:
    from app.settings import Settings

#: Every domain's settings read the same environment the same way.
ENV_CONFIG = SettingsConfigDict(
    env_prefix="ROADCHIEF_", extra="ignore", frozen=True, populate_by_name=True
)


class CoreSettings(BaseSettings):
    """What the core needs: the database, the server, logging, metrics and token secrets
    (environment variables, prefix ``ROADCHIEF_``)."""

    model_config = ENV_CONFIG

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
    time_zone: str = Field(default=DEFAULT_ZONE, description="Time zone spoken at the API's edges.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    background_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How often the service sweeps deadlines, measures patrols again and "
        "delivers webhooks (0: never; then run `roadchief workflow sweep`, `roadchief patrols "
        "remeasure` and `roadchief webhooks deliver` from cron).",
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

    @field_validator("trusted_proxies", "metrics_networks", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return split_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


def split_list(value: object) -> object:
    """'a, b,,c' → ('a', 'b', 'c'): the shape of every list setting."""
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return value


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


S = TypeVar("S", bound=BaseSettings)


class SettingsError(RuntimeError):
    """A bad environment variable, explained for the operator."""


def load_settings(cls: type[S]) -> S:
    """`cls()` from the environment; raises SettingsError naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            var = (
                "DATABASE_URL" if field.lower() == "database_url" else f"ROADCHIEF_{field.upper()}"
            )
            lines.append(f"  {var}: {err['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None


#: How the app's settings are loaded, registered by `app.settings` (which composes every
#: domain's) when it is imported: core's command-line helpers load them without naming a
#: domain. The type is the composition's, for the checker only.
_loader: Callable[[], Settings] | None = None


def register_loader(load: Callable[[], Settings]) -> None:
    global _loader
    _loader = load


def loaded_settings() -> Settings:
    """The process-wide settings, as `app.settings.get_settings` composes and caches them."""
    if _loader is None:
        raise RuntimeError("app.settings is not imported: nothing composes the settings")
    return _loader()
