"""Shared fixtures: the demo city on both engines, a client, a transaction per test.

Every test that touches storage runs twice: on SQLite + SpatiaLite and on PostgreSQL +
PostGIS (the throwaway cluster `scripts/test` starts; its URL comes in
ROADCHIEF_TEST_POSTGRES_URL). Each engine gets one migrated database with the demo city,
loaded once; every test runs inside a transaction that is rolled back afterwards, so
tests see the demo city and never each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, principal_for_user, user_by_username
from app.accounts.tokens import issue_access_token
from app.calendar.service import forget_calendar
from app.core.database import Database, utcnow
from app.core.deps import get_db_session
from app.main import create_app
from app.settings import Settings, get_settings
from tests.support import Headers
from tests.support.contract import Answer, ProblemRecorder, undocumented
from tests.support.databases import (
    ENGINES,
    POSTGRES_URL_VAR,
    DatabaseFactory,
    migrate,
    new_demo_database,
)
from tests.support.photos import jpeg
from tests.support.places import Spot, on_segment

#: The suite's "now" (ISO 8601 with offset), to run it on a chosen day: see scripts/test-dates.
TEST_NOW_VAR = "ROADCHIEF_TEST_NOW"


def pytest_configure(config: pytest.Config) -> None:
    if "postgis" in ENGINES and not os.environ.get(POSTGRES_URL_VAR):
        raise pytest.UsageError(
            f"{POSTGRES_URL_VAR} is not set. Run the suite with ./scripts/test (it starts a "
            "throwaway PostgreSQL + PostGIS), or set ROADCHIEF_TEST_ENGINES=sqlite to run "
            "the SpatiaLite half only."
        )


_suite_travel: time_machine.travel | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """The one clock of the suite: the real one, or the moment ROADCHIEF_TEST_NOW names,
    running on from there (started before any fixture, so every test and every fixture
    sees it). A test that means particular dates pins them itself with
    `@pytest.mark.time_machine(...)` (time-machine's marker); every other test must pass
    whatever day the suite runs on: `scripts/test-dates` proves it on the awkward days."""
    global _suite_travel
    value = os.environ.get(TEST_NOW_VAR)
    if not value:
        return
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise pytest.UsageError(f"{TEST_NOW_VAR} needs an offset: {value!r}")
    _suite_travel = time_machine.travel(moment, tick=True)
    _suite_travel.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _suite_travel is not None:
        _suite_travel.stop()


_factories: dict[str, DatabaseFactory] = {}
_demo_databases: dict[str, Database] = {}


@pytest.fixture(scope="session")
def database_factories(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], DatabaseFactory]]:
    def get(engine_name: str) -> DatabaseFactory:
        if engine_name not in _factories:
            _factories[engine_name] = DatabaseFactory(
                engine_name, tmp_path_factory.mktemp(engine_name)
            )
        return _factories[engine_name]

    yield get
    for factory in _factories.values():
        factory.close()


@pytest.fixture(scope="session")
def demo_database_for(
    database_factories: Callable[[str], DatabaseFactory],
) -> Callable[[str], Database]:
    """The migrated demo-city database of an engine, built on first use."""

    def get(engine_name: str) -> Database:
        if engine_name not in _demo_databases:
            _demo_databases[engine_name] = new_demo_database(database_factories(engine_name))
        return _demo_databases[engine_name]

    return get


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def factory(
    engine_name: str, database_factories: Callable[[str], DatabaseFactory]
) -> DatabaseFactory:
    return database_factories(engine_name)


@pytest.fixture(scope="session")
def demo_database(engine_name: str, demo_database_for: Callable[[str], Database]) -> Database:
    return demo_database_for(engine_name)


@pytest.fixture(scope="session")
def live_database(factory: DatabaseFactory) -> Database:
    """Another demo city, whose writes are committed: for the stories that run a real
    server (`tests.support.live.serve`) with concurrent clients or its background jobs, which
    the one rolled-back transaction of `session` cannot serve. Shared by those stories."""
    return new_demo_database(factory)


@pytest.fixture(scope="session")
def settings(factory: DatabaseFactory, demo_database: Database) -> Settings:
    return factory.settings(demo_database.engine.url.render_as_string(hide_password=False))


@pytest.fixture
def session(demo_database: Database) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    Services' commits become savepoint releases, their rollbacks savepoint rollbacks,
    so "nothing was stored" is checked exactly as in production.
    """
    with demo_database.engine.connect() as conn:
        outer = conn.begin()
        with Session(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            yield session
        outer.rollback()
    forget_calendar()  # a calendar the test changed was rolled back with it


@pytest.fixture
def app(settings: Settings, demo_database: Database, session: Session) -> Iterator[FastAPI]:
    """The app on the test's session. The test errors if the app answered a problem its
    OpenAPI entry does not document (tests/support/contract.py)."""
    app = create_app(settings, demo_database)
    app.dependency_overrides[get_db_session] = lambda: session
    answers: set[Answer] = set()
    app.add_middleware(ProblemRecorder, answers=answers)
    app.state.problem_answers = answers
    yield app
    if missing := undocumented(answers):
        pytest.fail(
            "answered problems their OpenAPI entries do not document:\n"
            + "\n".join(f"  {a.method} {a.path} -> {a.status} {a.code}" for a in missing)
        )


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A client that has not signed in."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def as_user(session: Session, settings: Settings) -> Callable[[str], dict[str, str]]:
    """Headers of a signed-in user: `client.get(url, headers=as_user("demo-chief-2"))`.

    The access token is issued as sign-in issues it, without the password round trip.
    """

    def headers(username: str) -> dict[str, str]:
        user = user_by_username(session, username)
        token = issue_access_token(principal_for_user(user), utcnow(), settings)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def client(app: FastAPI, as_user: Callable[[str], dict[str, str]]) -> Iterator[TestClient]:
    """Signed in as the demo admin; pass `headers=as_user(...)` to act as someone else."""
    with TestClient(app, raise_server_exceptions=False, headers=as_user("demo-admin")) as client:
        yield client


@pytest.fixture
def empty_database(factory: DatabaseFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A migrated, empty database that the CLI reaches through DATABASE_URL."""
    url = factory.new_url()
    database = factory.database(url)
    migrate(database)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ROADCHIEF_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ROADCHIEF_ARGON2_MEMORY_KIB", "1024")
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


# --- the stories' actors and places ------------------------------------------------------


@pytest.fixture
def spot(session: Session) -> Spot:
    """A place on one of demo-chief-3's lanes (in 文博社区, 文博路街道)."""
    return on_segment(session, chief="demo-chief-3")


@pytest.fixture
def phone(anonymous: TestClient, as_user: Headers) -> Callable[[str], TestClient]:
    """A client signed in as a user, as their phone."""

    def make(username: str = "demo-chief-3") -> TestClient:
        anonymous.headers.update(as_user(username))
        return anonymous

    return make


@pytest.fixture
def staff(session: Session, settings: Settings) -> Callable[[str], str]:
    """Creates a department staff account of a unit; returns its username."""

    def make(unit_code: str) -> str:
        username = f"staff-{unit_code}"
        create_user(
            session,
            settings,
            None,
            UserCreate(
                username=username,
                display_name=f"{unit_code} 值班员",
                password="Staff@2026-long",
                roles=[Role.DEPARTMENT_STAFF],
                unit_code=unit_code,
                jurisdiction_codes=["410199"],
            ),
        )
        return username

    return make


@pytest.fixture
def outsider(session: Session, settings: Settings) -> str:
    """A road chief of the next street (410199002), who must not reach 文博路街道's cases;
    returns the username."""
    username = "chief-410199002"
    create_user(
        session,
        settings,
        None,
        UserCreate(
            username=username,
            display_name="二级路长（邻街）",
            password="Chief@2026-long",
            roles=[Role.ROAD_CHIEF],
            chief_level=2,
            jurisdiction_codes=["410199002"],
        ),
    )
    return username


@pytest.fixture
def good_jpeg() -> Callable[..., bytes]:
    """Distinct phone photos: the media directory outlives each test's rolled-back rows."""

    def make(**exif: Any) -> bytes:
        return jpeg(seed=uuid.uuid4().int % 65536, **exif)

    return make
