"""Alembic environment: one migration history for SpatiaLite and PostGIS.

GeoAlchemy2's helpers turn geometry columns and spatial indexes into the right calls on
each engine (AddGeometryColumn/CreateSpatialIndex on SpatiaLite, GiST on PostGIS).
"""

from __future__ import annotations

import re
from logging.config import fileConfig
from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers

import app.territory.models  # noqa: F401 - registers the tables
from app.core.config import get_settings
from app.core.database import Base, create_db_engine

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# Tables and views the spatial extensions own; never ours to create or drop.
_SYSTEM_TABLE = re.compile(
    r"^(spatial_ref_sys.*|geometry_columns.*|geom_cols_ref_sys|views_geometry_columns.*"
    r"|virts_geometry_columns.*|vector_layers.*|spatialite_history|sql_statements_log"
    r"|spatialindex|elementarygeometries|knn2?|data_licenses|sqlite_.*|idx_.*"
    r"|iso_metadata.*|raster_coverages.*|vector_coverages.*|wms_.*|topologies|networks"
    r"|se_.*|rl2map_.*|stored_.*|ISO_metadata.*|SE_.*)$",
    re.IGNORECASE,
)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table" and reflected and compare_to is None and name and _SYSTEM_TABLE.match(name):
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    settings = get_settings()
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or settings.database_url, settings)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: they differ per engine")
run_migrations_online()
