"""Alembic environment: one migration history for SpatiaLite and PostGIS.

GeoAlchemy2's helpers turn geometry columns and spatial indexes into the right calls on
each engine (AddGeometryColumn/CreateSpatialIndex on SpatiaLite, GiST on PostGIS).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers

import app.accounts.models  # registers the tables (as do the next two)
import app.assessment.models
import app.audit.models
import app.calendar.models
import app.cases.models
import app.core.idempotency
import app.exchange.models
import app.media.models
import app.notifications.models
import app.open311.models
import app.patrols.models
import app.reports.models
import app.routing.models
import app.shops.models
import app.territory.models
import app.whistles.models  # noqa: F401
from app.core.database import Base, UTCDateTime, create_db_engine
from app.core.schema import include_object, migration_transaction
from app.settings import get_settings

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import app code: UTCDateTime is stored as a plain timestamp.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    result: str | bool = alembic_helpers.render_item(type_, obj, autogen_context)
    return result


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=_render_item,
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
    engine = create_db_engine(
        config.get_main_option("sqlalchemy.url") or settings.database_url, settings
    )
    try:
        with migration_transaction(engine) as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: they differ per engine")
run_migrations_online()
