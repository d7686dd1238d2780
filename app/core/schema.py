"""Alembic glue shared by migrations/env.py, the CLI, `/readyz` and the tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import Connection, Engine, func, select

from app.core.joblocks import lock_key

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"

# Tables and views the spatial extensions own; never ours to create or drop.
_SYSTEM_TABLE = re.compile(
    r"^(spatial_ref_sys.*|geometry_columns.*|geom_cols_ref_sys|views_geometry_columns.*"
    r"|virts_geometry_columns.*|vector_layers.*|spatialite_history|sql_statements_log"
    r"|spatialindex|elementarygeometries|knn2?|data_licenses|sqlite_.*|idx_.*"
    r"|iso_metadata.*|raster_coverages.*|vector_coverages.*|wms_.*|topologies|networks"
    r"|se_.*|rl2map_.*|stored_.*)$",
    re.IGNORECASE,
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate's filter: our tables, GeoAlchemy2's rules for spatial indexes."""
    if type_ == "table" and reflected and compare_to is None and _SYSTEM_TABLE.match(name or ""):
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    return config


def schema_heads() -> frozenset[str]:
    """The revisions the code expects the database to be at (read once per process:
    the migration scripts do not change under a running server)."""
    return _heads()


@lru_cache(maxsize=1)
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _foreign_keys(conn: Connection, state: str) -> None:
    # On the driver's connection: SQLite ignores this pragma inside a transaction.
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA foreign_keys = {state}")


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """The one transaction migrations run in.

    On SQLite, foreign keys are off meanwhile and checked before it commits: SQLite changes
    a table's constraints only by rebuilding it (Alembic's batch mode), and dropping the old
    copy of a table that others refer to would trip their keys.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(conn, "OFF")
        try:
            with conn.begin():
                if not sqlite:
                    # Several servers upgrading at start: one migrates, the others wait
                    # and then find the schema at head (SQLite's writer lock does this).
                    conn.execute(select(func.pg_advisory_xact_lock(lock_key("migrations"))))
                yield conn
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").first()):
                    raise RuntimeError(f"the migration broke a foreign key: {tuple(broken)}")
        finally:
            if sqlite:
                _foreign_keys(conn, "ON")


def run_migrations(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Migrate through `engine` (its connect hooks load SpatiaLite): tests and benchmarks."""
    from alembic import command

    config = alembic_config()
    config.attributes["configure_logger"] = False
    with migration_transaction(engine) as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
