"""The schema changes only through Alembic, the same way on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from app.core.database import Base
from app.core.schema import include_object, schema_heads
from tests.conftest import DatabaseFactory, migrate

APP_TABLES = {t.name for t in Base.metadata.sorted_tables}


def test_upgrade_from_empty_matches_the_models_and_downgrades_to_nothing(
    factory: DatabaseFactory,
) -> None:
    database = factory.database(factory.new_url())
    migrate(database)
    assert set(inspect(database.engine).get_table_names()) >= APP_TABLES | {"alembic_version"}

    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        assert set(context.get_current_heads()) == schema_heads()
        assert compare_metadata(context, Base.metadata) == []

    migrate(database, "base", down=True)
    assert not set(inspect(database.engine).get_table_names()) & APP_TABLES
    migrate(database)  # up again: the downgrade left nothing in the way
    assert set(inspect(database.engine).get_table_names()) >= APP_TABLES
