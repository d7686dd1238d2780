"""A restore that cannot be trusted is refused before it writes anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from app.cli import cli
from app.core.database import Database
from app.settings import get_settings
from tests.support.databases import DatabaseFactory


def roadchief(url: str, media: Path, *args: str) -> Any:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(
            cli, list(args), env={"DATABASE_URL": url, "ROADCHIEF_MEDIA_DIR": str(media)}
        )
    finally:
        get_settings.cache_clear()


def tables_of(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [t for t in inspect(conn).get_table_names() if t in ("cases", "photos")]
    finally:
        engine.dispose()


def test_a_damaged_or_foreign_backup_is_refused_and_changes_nothing(
    empty_database: Database, factory: DatabaseFactory, engine_name: str, tmp_path: Path
) -> None:
    source = empty_database.engine.url.render_as_string(hide_password=False)
    backup = tmp_path / "backup"
    made = roadchief(source, tmp_path / "media", "backup", "create", str(backup))
    assert made.exit_code == 0, made.output
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tables"]["cases"] == 0
    assert manifest["tables"]["alembic_version"] == 1
    assert manifest["photos"]["count"] == 0

    target = factory.new_url()
    dump = backup / manifest["database"]["file"]
    dump.write_bytes(dump.read_bytes() + b"\0")
    damaged = roadchief(target, tmp_path / "restored", "backup", "restore", str(backup))
    assert damaged.exit_code == 1
    assert "damaged" in damaged.output
    assert tables_of(target) == []

    (backup / "manifest.json").write_text(json.dumps({**manifest, "format": 99}), "utf-8")
    unknown = roadchief(target, tmp_path / "restored", "backup", "restore", str(backup))
    assert unknown.exit_code == 1
    assert "format 99" in unknown.output
    assert tables_of(target) == []

    # Into the database it came from: not empty, refused.
    (backup / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    dump.write_bytes(dump.read_bytes()[:-1])
    onto_itself = roadchief(source, tmp_path / "media", "backup", "restore", str(backup))
    assert onto_itself.exit_code == 1
    assert "not empty" in onto_itself.output
