"""The token signing key lives in the database, so every API server shares it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from app.accounts.models import SigningKey
from app.accounts.service import principal_for_user, user_by_username
from app.accounts.tokens import database_key, issue_access_token, signing_key
from app.core.database import Database, utcnow
from app.main import create_app
from app.settings import Settings, get_settings
from tests.support.databases import DatabaseFactory, migrate


def _keyless(factory: DatabaseFactory, url: str, key_file: Path) -> Settings:
    return factory.settings(url).model_copy(
        update={"secret_key": None, "secret_key_file": key_file}
    )


def test_two_servers_starting_at_once_share_one_key(
    factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = factory.new_url()
    migrate(factory.database(url))
    settings = _keyless(factory, url, tmp_path / "absent")
    servers = [factory.database(url) for _ in range(4)]
    with servers[0].sessions() as session:
        written = session.scalar(select(SigningKey.secret))  # by the migration
        assert written is not None
        assert len(written) >= 32
        session.execute(delete(SigningKey))  # lost somehow: the first server writes one
        session.commit()
    with ThreadPoolExecutor(4) as pool:
        keys = set(pool.map(lambda db: database_key(db, settings), servers))
    assert len(keys) == 1
    assert len(keys.pop()) >= 32
    with servers[0].sessions() as session:
        assert session.scalar(select(func.count()).select_from(SigningKey)) == 1


def test_a_token_from_one_server_is_good_on_another(
    factory: DatabaseFactory, demo_database: Database, settings: Settings, tmp_path: Path
) -> None:
    url = settings.database_url
    keyless = settings.model_copy(update={"secret_key": None, "secret_key_file": tmp_path / "no"})
    with demo_database.sessions() as session:
        principal = principal_for_user(user_by_username(session, "demo-chief-3"))
    create_app(keyless, demo_database)  # the first server registers its engine
    token = issue_access_token(principal, utcnow(), keyless)
    # Another process of the deployment: same database, its own engine.
    second = factory.database(url)
    assert database_key(second, keyless) == database_key(demo_database, keyless)
    with TestClient(create_app(keyless, second)) as client:
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == "demo-chief-3"


def test_an_old_key_file_becomes_the_shared_key(
    factory: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text("an-old-single-host-key-of-enough-length-0123456789\n")
    monkeypatch.setenv("ROADCHIEF_SECRET_KEY_FILE", str(key_file))
    url = factory.new_url()
    database = factory.database(url)
    migrate(database)  # the upgrade takes the old key over
    settings = _keyless(factory, url, key_file)
    assert database_key(database, settings) == (
        b"an-old-single-host-key-of-enough-length-0123456789"
    )


def test_a_tool_without_an_app_reads_the_key_inside_a_writing_transaction(
    empty_database: Database,
) -> None:
    """The CLI signs in inside its own writing session: reading the key must not wait for
    that session's write lock (SQLite: one writer)."""
    settings = get_settings().model_copy(update={"secret_key": None})
    with empty_database.sessions() as session:
        session.execute(delete(SigningKey).where(SigningKey.id == -1))  # holds the write lock
        assert len(signing_key(settings)) >= 32
