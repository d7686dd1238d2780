"""The database layer: engines, sessions, column types and the spatial-index filter.

This is the only module that knows whether it talks to SQLite + SpatiaLite or to
PostgreSQL + PostGIS. Everything above it writes one query for both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, TypeDecorator

from app.core.config import Settings

#: Stable constraint names, so that migrations read the same on both engines.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC on both engines (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware values only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def str_enum(cls: type[StrEnum]) -> Enum:
    """An enum column stored as its string value (no native type: both engines read alike)."""
    return Enum(
        cls,
        native_enum=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _sqlite_dbapi() -> Any:
    """A sqlite3 DB-API module that can load extensions.

    pyenv and python.org builds compile the stdlib module without extension loading;
    pysqlite3 is the same module built with it.
    """
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the platform
        raise RuntimeError(
            "This Python's sqlite3 cannot load SpatiaLite and pysqlite3 is not installed: "
            "run `pip install pysqlite3-binary` (x86_64 Linux) or use Debian's python3."
        ) from exc
    return dbapi2


def _install_spatialite(engine: Engine, library: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" event below issues BEGIN,
        # which makes SAVEPOINT and transactional DDL behave (SQLAlchemy's pysqlite recipe).
        dbapi_conn.isolation_level = None
        dbapi_conn.enable_load_extension(True)
        try:
            dbapi_conn.load_extension(library)
        except Exception as exc:
            raise RuntimeError(
                f"cannot load SpatiaLite ({library!r}): {exc}. On Debian/Ubuntu run "
                "`sudo apt-get install libsqlite3-mod-spatialite`, or set "
                "ROADCHIEF_SPATIALITE_LIBRARY to the module's path."
            ) from exc
        finally:
            dbapi_conn.enable_load_extension(False)
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        dbapi_conn.execute("PRAGMA busy_timeout = 10000")
        if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
            dbapi_conn.execute("PRAGMA journal_mode = WAL")
            dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def create_db_engine(url: str | URL, settings: Settings, **kwargs: Any) -> Engine:
    """An engine for `url` with the spatial extension ready on every connection."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            module=_sqlite_dbapi(),
            connect_args={"check_same_thread": False},
            **kwargs,
        )
        _install_spatialite(engine, settings.spatialite_library)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    raise ValueError(f"unsupported database: {url.get_backend_name()}")


class Database:
    """An engine and its session factory: one per process, or one per test database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(create_db_engine(settings.database_url, settings))

    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# --- the spatial-index filter --------------------------------------------------------------


class bbox_intersects(FunctionElement[bool]):  # noqa: N801 - used like a SQL function
    """True where the column's bounding box meets (min_lon, min_lat, max_lon, max_lat).

    Uses the spatial index on both engines: PostGIS's `&&` on the GiST index, and on
    SpatiaLite a lookup in the column's R*Tree, which SpatiaLite never uses by itself.
    Exact predicates (ST_Intersects) or distances are applied on top.
    Call as ``bbox_intersects(Model.geom, min_lon, min_lat, max_lon, max_lat)``.
    """

    type = Boolean()
    inherit_cache = True
    name = "bbox_intersects"
    # A predicate in itself: without this, SQLite (no native boolean) gets `(...) = 1`,
    # which hides the `IN (R*Tree lookup)` from the planner and turns it into a full scan.
    _is_implicitly_boolean = True


def _bbox_parts(element: bbox_intersects, compiler: Any, **kw: Any) -> tuple[Any, list[str]]:
    column, *bounds = list(element.clauses)
    return column, [compiler.process(b, **kw) for b in bounds]


@compiles(bbox_intersects, "postgresql")
def _bbox_pg(element: bbox_intersects, compiler: Any, **kw: Any) -> str:
    column, (x1, y1, x2, y2) = _bbox_parts(element, compiler, **kw)
    col = compiler.process(column, **kw)
    return f"({col} && ST_MakeEnvelope({x1}, {y1}, {x2}, {y2}, 4326))"


@compiles(bbox_intersects, "sqlite")
def _bbox_sqlite(element: bbox_intersects, compiler: Any, **kw: Any) -> str:
    column, (x1, y1, x2, y2) = _bbox_parts(element, compiler, **kw)
    table = column.table
    pk = compiler.process(table.primary_key.columns.values()[0], **kw)
    index = f'"idx_{table.name}_{column.name}"'
    return (
        f"({pk} IN (SELECT pkid FROM {index} WHERE xmin <= {x2} AND xmax >= {x1}"
        f" AND ymin <= {y2} AND ymax >= {y1}))"
    )


class wgs84_point(FunctionElement[Any]):  # noqa: N801 - used like a SQL function
    """A WGS 84 point made in SQL from two numbers: ``wgs84_point(lon, lat)``.

    Cheaper than parsing WKT for every query, and each engine spells it its own way.
    """

    type = Geometry("POINT", srid=4326)
    inherit_cache = True
    name = "wgs84_point"


@compiles(wgs84_point, "postgresql")
def _point_pg(element: wgs84_point, compiler: Any, **kw: Any) -> str:
    lon, lat = (compiler.process(c, **kw) for c in element.clauses)
    return f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)"


@compiles(wgs84_point, "sqlite")
def _point_sqlite(element: wgs84_point, compiler: Any, **kw: Any) -> str:
    lon, lat = (compiler.process(c, **kw) for c in element.clauses)
    return f"MakePoint({lon}, {lat}, 4326)"


class json_list_has(FunctionElement[bool]):  # noqa: N801 - used like a SQL function
    """True where a JSON column's list under `key` holds `value`:
    ``json_list_has(CaseEvent.detail, "units", Unit.code)``. PostgreSQL asks jsonb
    containment, SQLite walks the list with json_each."""

    type = Boolean()
    inherit_cache = True
    name = "json_list_has"
    _is_implicitly_boolean = True


@compiles(json_list_has, "postgresql")
def _json_list_has_pg(element: json_list_has, compiler: Any, **kw: Any) -> str:
    column, key, value = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"((CAST({column} AS jsonb) -> CAST({key} AS TEXT)) "
        f"@> jsonb_build_array(CAST({value} AS TEXT)))"
    )


@compiles(json_list_has, "sqlite")
def _json_list_has_sqlite(element: json_list_has, compiler: Any, **kw: Any) -> str:
    column, key, value = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({column}, '$.' || {key}) AS item "
        f"WHERE item.value = {value})"
    )
