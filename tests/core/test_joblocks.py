"""A whole job runs on one server at a time on PostgreSQL; SQLite has one writer anyway."""

from __future__ import annotations

from app.core.database import Database
from app.core.joblocks import job_lock, lock_key
from tests.support.databases import DatabaseFactory


def test_one_server_runs_a_job_at_a_time(factory: DatabaseFactory, demo_database: Database) -> None:
    other_server = factory.database(demo_database.engine.url.render_as_string(hide_password=False))
    postgres = demo_database.engine.dialect.name == "postgresql"
    with job_lock(demo_database.engine, "close_periods") as first:
        assert first
        with job_lock(other_server.engine, "close_periods") as second:
            assert second is not postgres  # PostgreSQL: taken; SQLite: always granted
        with job_lock(other_server.engine, "remeasure_patrols") as unrelated:
            assert unrelated
    with job_lock(other_server.engine, "close_periods") as after:
        assert after  # released with its transaction
    assert lock_key("close_periods") == lock_key("close_periods") != lock_key("x")
