"""The database layer: engines, sessions, column types and the spatial-index filter.

This is the only module that knows whether it talks to SQLite + SpatiaLite or to
PostgreSQL + PostGIS. Everything above it writes one query for both.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, cast

from geoalchemy2 import Geometry
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, TypeDecorator

from app.core.config import CoreSettings
from app.core.errors import Problem

log = logging.getLogger(__name__)

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


def rows_changed(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE changed: its result is a CursorResult, though
    `Session.execute` is typed as answering any Result."""
    return cast(CursorResult[Any], result).rowcount


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
        from pysqlite3 import dbapi2
    except ImportError as exc:  # pragma: no cover - depends on the platform
        raise RuntimeError(
            "This Python's sqlite3 cannot load SpatiaLite and pysqlite3 is not installed: "
            "run `pip install pysqlite3-binary` (x86_64 Linux) or use Debian's python3."
        ) from exc
    return dbapi2


#: Execution option of read-only sessions' connections: their transactions begin deferred.
_READ_ONLY = "roadchief_read_only"
#: How long a writer waits for its turn (SQLite's busy timeout, and the gate's).
_WRITE_WAIT_MS = 10_000
#: Marks, in a connection's info, that it holds its engine's writers' gate.
_GATE = "roadchief_writers_gate"


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
        dbapi_conn.execute(f"PRAGMA busy_timeout = {_WRITE_WAIT_MS}")
        if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
            dbapi_conn.execute("PRAGMA journal_mode = WAL")
            dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")

    # SQLite's busy handler polls, and the longer a writer has waited the longer it sleeps
    # between polls: under load newcomers take the lock first and an unlucky writer starves
    # to the timeout. This process's writers queue at a gate instead, each woken as the one
    # before it finishes (writers of other processes still meet at SQLite's lock).
    gate = threading.Lock()

    def _leave(info: dict[Any, Any]) -> None:
        if info.pop(_GATE, False):
            gate.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred BEGIN that reads and then writes fails at once ("database is locked",
        # whatever the busy timeout) when another writer committed in between: SQLite
        # cannot move its read snapshot forward. A writing transaction therefore takes the
        # write lock first (IMMEDIATE), queueing on busy_timeout; readers are not blocked
        # in WAL mode. Read-only sessions begin deferred, so a long read never holds the
        # writers back (see `Database.read_sessions`).
        if conn.get_execution_options().get(_READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
            return
        if gate.acquire(timeout=_WRITE_WAIT_MS / 1000):
            conn.info[_GATE] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _leave(conn.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Any) -> None:
        _leave(conn.info)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        _leave(record.info)  # a connection returned however its transaction ended


#: Connections each process keeps open. SQLAlchemy's default (5, overflow closed on
#: return) made every request beyond the fifth at once open a connection and close it
#: afterwards: on SQLite, loading SpatiaLite each time, a tenth of a busy worker's time
#: (bench/README.md, `overhead`). 15 is what the default pool could reach anyway.
POOL_SIZE = 15
POOL_OVERFLOW = 10


def create_db_engine(url: str | URL, settings: CoreSettings, **kwargs: Any) -> Engine:
    """An engine for `url` with the spatial extension ready on every connection."""
    url = make_url(url)
    if url.database != ":memory:" and "poolclass" not in kwargs:  # else not a queue pool
        kwargs = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, **kwargs}
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
    elif url.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    else:
        raise ValueError(f"unsupported database: {url.get_backend_name()}")
    event.listen(engine, "before_cursor_execute", _no_nul_sent)
    return engine


# --- text PostgreSQL cannot hold ------------------------------------------------------------


class TextWithNul(Problem):
    code = "text_with_nul"
    status = 422
    title = "文本中不能含有空字符"


#: A JSON-escaped NUL that is not itself an escaped backslash followed by "u0000".
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        # The substring test first: the expression runs only on text that may hold one.
        return "\x00" in value or ("\\u0000" in value and _ESCAPED_NUL.search(value) is not None)
    if isinstance(value, Mapping):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


def _refuse_nul() -> TextWithNul:
    return TextWithNul("文本中不能含有空字符（U+0000）")


@event.listens_for(Session, "before_flush")
def _no_nul_written(session: Session, _context: Any, _instances: Any) -> None:
    """Refused before anything is sent, and the offending changes dropped, so a session
    that lives on (a caller catching the refusal, a test's session) stays usable."""
    new = [obj for obj in session.new if _holds_nul(list(inspect(obj).dict.values()))]
    dirty = [obj for obj in session.dirty if _holds_nul(list(inspect(obj).dict.values()))]
    if new or dirty:
        for obj in new:
            session.expunge(obj)
        for obj in dirty:
            session.expire(obj)
        raise _refuse_nul()


def _no_nul_sent(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, many: bool
) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: a filter or code carrying one failed
    there as a 500 while SQLite answered. Both engines refuse it alike, wherever it came
    from (path, query, body), before the statement leaves."""
    if _holds_nul(parameters if many else [parameters]):
        raise _refuse_nul()


@dataclass(frozen=True, slots=True)
class Staleness:
    """How fresh a read is: the server it came from, the moment up to which it holds every
    committed change (UTC), and how far that is behind the primary, in seconds."""

    source: Literal["primary", "replica"]
    as_of: datetime
    lag_seconds: float


#: The replica's "as of when is what you hold complete", asked as its read transaction
#: begins. Up to date (now) while it is still in recovery, receiving, not paused and has
#: replayed all it received; else as of its last replayed commit (NULL when it has replayed
#: none since it started: unknown, so not used). A server no longer in recovery (promoted)
#: is current.
_REPLICA_AS_OF = text(
    """SELECT now(), CASE
      WHEN NOT pg_is_in_recovery() THEN now()
      WHEN NOT pg_is_wal_replay_paused()
           AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
           AND EXISTS (SELECT FROM pg_stat_wal_receiver) THEN now()
      ELSE pg_last_xact_replay_timestamp() END"""
)
#: After the replica failed to answer, how long reads go straight to the primary.
REPLICA_RETRY_SECONDS = 5.0


class Database:
    """An engine and its session factories: one per process, or one per test database.

    `sessions` may write: on SQLite each transaction takes the write lock when it begins,
    so concurrent writers wait their turn (busy_timeout) instead of failing. `read_sessions`
    only read: they never wait for writers nor hold them up. A read session that writes
    all the same must make the write the first statement of its transaction (commit what
    it read first): SQLite then waits for the lock as it does for a writer.

    `replica`, when given, is a PostgreSQL streaming replica (hot standby) of `engine`:
    `replica_session` reads from it while it is at most `max_lag_seconds` behind.
    """

    def __init__(
        self, engine: Engine, replica: Engine | None = None, *, max_lag_seconds: float = 10.0
    ) -> None:
        self.engine = engine
        #: The engine for connections that only read (health checks, read sessions).
        self.read_engine = engine.execution_options(**{_READ_ONLY: True})
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        # READ ONLY transactions there too: a standby refuses writes, but a promoted one
        # would not.
        self._replica_sessions = (
            sessionmaker(
                replica.execution_options(postgresql_readonly=True), expire_on_commit=False
            )
            if replica is not None
            else None
        )
        self._replica_down_until = 0.0

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> Database:
        replica = None
        if settings.database_read_url:
            replica = create_replica_engine(settings.database_read_url, settings)
        return cls(
            create_db_engine(settings.database_url, settings),
            replica,
            max_lag_seconds=settings.database_read_max_lag_seconds,
        )

    def new_session(self, *, write: bool = True) -> Session:
        """A session (no connection yet) that may write, or that only reads."""
        return (self.sessions if write else self.read_sessions)()

    def replica_session(self) -> tuple[Session, Staleness] | None:
        """A session on the replica, its read transaction begun and its staleness measured,
        when a replica is configured, answers and is close enough behind; else None, and
        the caller reads from the primary. The hot standby refuses any write."""
        if self._replica_sessions is None or time.monotonic() < self._replica_down_until:
            return None
        session = self._replica_sessions()
        try:
            now, as_of = session.execute(_REPLICA_AS_OF).one()
        except DBAPIError as exc:
            # A replica that is down or restarting costs its readers nothing but the
            # primary's time: they read there until it is retried.
            session.close()
            self._replica_down_until = time.monotonic() + REPLICA_RETRY_SECONDS
            log.warning("read replica unavailable, reading from the primary: %s", exc)
            return None
        lag = None if as_of is None else max((now - as_of).total_seconds(), 0.0)
        if lag is None or lag > self.max_lag_seconds:
            session.close()
            return None
        return session, Staleness("replica", as_of.astimezone(UTC), lag)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replica is not None:
            self.replica.dispose()


def create_replica_engine(url: str | URL, settings: CoreSettings) -> Engine:
    """The engine of a PostgreSQL read replica: named in pg_stat_activity, and quick to
    give up connecting (readers then go to the primary)."""
    url = make_url(url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("a read replica must be PostgreSQL")
    defaults = {"application_name": "roadchief-replica-read", "connect_timeout": 3}
    connect_args = {k: v for k, v in defaults.items() if k not in url.query}
    return create_db_engine(url, settings, connect_args=connect_args)


def computes_percentiles(session: Session) -> bool:
    """Whether the engine has ordered-set aggregates (`percentile_cont ... WITHIN GROUP`):
    PostgreSQL does; SQLite has none, so its callers compute them from the rows."""
    return bool(session.get_bind().dialect.name == "postgresql")


def upsert(session: Session, table: Any) -> Any:
    """`INSERT` with `.on_conflict_do_update(...)` / `.on_conflict_do_nothing(...)` and
    `.excluded`, for the session's engine (both spell `ON CONFLICT` alike)."""
    return upsert_for(session.get_bind().dialect.name, table)


def upsert_for(dialect: str, table: Any) -> Any:
    """`upsert` for an engine named by its dialect (a statement built once per engine)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


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
