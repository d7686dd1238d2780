"""The suite's databases: which engines run, empty migrated databases on each, the demo city.

The fixtures in tests/conftest.py build on these; the stories that need a database or a
server of their own (migrations, two servers, restore drills) use them directly.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.access.rules import SYSTEM
from app.core.database import Database
from app.core.schema import run_migrations
from app.demo.loader import load_demo_city
from app.demo.users import create_demo_users
from app.routing.shipped import load_shipped_routing
from app.settings import Settings

POSTGRES_URL_VAR = "ROADCHIEF_TEST_POSTGRES_URL"
TEST_SECRET_KEY = "test-signing-key-that-is-long-enough-0123456789"
ENGINES = [e for e in os.environ.get("ROADCHIEF_TEST_ENGINES", "sqlite,postgis").split(",") if e]


class DatabaseFactory:
    """Creates empty databases on one engine and drops them at the end of the run."""

    def __init__(self, engine_name: str, tmp_dir: Path) -> None:
        self.engine_name = engine_name
        self.tmp_dir = tmp_dir
        self._created: list[str] = []
        self._databases: list[Database] = []

    def new_url(self) -> str:
        name = f"roadchief_test_{uuid.uuid4().hex[:12]}"
        if self.engine_name == "sqlite":
            return f"sqlite:///{self.tmp_dir / (name + '.sqlite3')}"
        admin = make_url(os.environ[POSTGRES_URL_VAR])
        with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    def settings(self, url: str) -> Settings:
        return Settings(
            database_url=url,
            log_format="console",
            media_dir=self.tmp_dir / "media",
            secret_key=TEST_SECRET_KEY,
            # The cheapest Argon2 the library accepts: the suite signs in hundreds of times.
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            # The tests run the sweep and webhook delivery themselves, at the times they
            # choose; a timer in the background would race them.
            background_interval_seconds=0,
        )

    def database(self, url: str) -> Database:
        database = Database.from_settings(self.settings(url))
        self._databases.append(database)
        return database

    def close(self) -> None:
        for database in self._databases:
            database.dispose()
        if self._created:
            admin = make_url(os.environ[POSTGRES_URL_VAR])
            with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as conn:
                for name in self._created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate(database: Database, revision: str = "head", *, down: bool = False) -> None:
    """Run Alembic on `database` through the app's own engine (SpatiaLite loaded)."""
    run_migrations(database.engine, revision, down=down)


def new_demo_database(factory: DatabaseFactory) -> Database:
    """A migrated database with the demo city, its users and the shipped routing."""
    database = factory.database(factory.new_url())
    migrate(database)
    settings = factory.settings(database.engine.url.render_as_string(hide_password=False))
    with database.sessions() as session:
        list(load_demo_city(session, settings))
        create_demo_users(session, settings)
        load_shipped_routing(session, SYSTEM)
    return database
