"""The schema changes only through Alembic, the same way on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

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


def test_photos_in_use_survive_the_move_to_one_row_per_upload(factory: DatabaseFactory) -> None:
    """SQLite drops `photos.sha256`'s unique constraint by rebuilding the table that
    reports, cases and uses refer to: the rows and every key must come through."""
    database = factory.database(factory.new_url())
    migrate(database, "dfe46c1cdba1")
    photo = {"sha": "ab" * 32, "key": "ab/ab/x.jpg", "at": datetime(2026, 11, 30, tzinfo=UTC)}
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO photos (id, sha256, format, byte_size, width, height, original_key,"
            " display_key, thumbnail_key, uploaded_at) VALUES (7, :sha, 'JPEG', 10, 4, 3,"
            " :key, :key, :key, :at)"), photo)  # fmt: skip
        conn.execute(text("INSERT INTO photo_uses (photo_id, used_by, jurisdiction_path, used_at)"
                          " VALUES (7, 'report:1', '/410199/', :at)"), photo)  # fmt: skip

    migrate(database)

    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT photo_id FROM photo_uses")).scalar() == 7
        conn.execute(text(  # a second upload of the same bytes, by someone else
            "INSERT INTO photos (id, sha256, format, byte_size, width, height, original_key,"
            " display_key, thumbnail_key, uploaded_at) VALUES (8, :sha, 'JPEG', 10, 4, 3,"
            " :key, :key, :key, :at)"), photo)  # fmt: skip
    with pytest.raises(IntegrityError), database.engine.begin() as conn:
        conn.execute(text("DELETE FROM photos WHERE id = 7"))  # still guarded by its use
