"""Backups that restore (备份与恢复): the database with its engine's own tools, the photos
it refers to, and a manifest of row counts and SHA-256 checksums that a restore checks.

The database is copied at one moment: SQLite through its online backup API (a consistent
copy while the service writes), PostgreSQL with `pg_dump -Fc` of the server's own major
version, inside a snapshot exported from a transaction that also counts the rows and reads
the photo keys, so the manifest describes exactly the dump. The photos are copied after
the database: files are written before their rows commit and removed only after their
rows are gone, so every photo the dump refers to is still in the store (an upload unused
for ROADCHIEF_PHOTO_ORPHAN_HOURS may be swept meanwhile; the manifest then names it).

This module knows both engines because their backup tools differ; it is the only one
besides `app.core.database`.

A backup directory:
    manifest.json           counts, checksums, versions
    database.sqlite3        (SQLite) or database.pgdump (PostgreSQL, custom format)
    photos/ab/cd/<sha256>.jpg  ...  every photo file the database refers to
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from app.core.database import _sqlite_dbapi
from app.core.schema import _SYSTEM_TABLE
from app.media.storage import LocalMediaStorage, key_sha256, sha256_of_stream
from app.media.transfer import copy_photos, holds

if TYPE_CHECKING:
    from app.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
PHOTO_COLUMNS = ("original_key", "display_key", "thumbnail_key")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why, for the operator."""


@dataclass
class Outcome:
    """What a backup or restore did, and what it found wrong."""

    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return sha256_of_stream(f)[0]


def _engine_name(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    if url.get_backend_name() == "postgresql":
        return "postgresql"
    raise BackupError(f"no backup for {url.get_backend_name()} databases")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


# --- counting what a database holds --------------------------------------------------------


def _ours(names: list[str]) -> list[str]:
    return sorted(n for n in names if not _SYSTEM_TABLE.match(n))


def _counts(query: Callable[[str], list[tuple[Any, ...]]], tables: list[str]) -> dict[str, int]:
    return {t: int(query(f'SELECT count(*) FROM "{t}"')[0][0]) for t in tables}


def _photo_keys(query: Callable[[str], list[tuple[Any, ...]]], tables: list[str]) -> set[str]:
    if "photos" not in tables:
        return set()
    rows = query(f"SELECT {', '.join(PHOTO_COLUMNS)} FROM photos")
    return {key for row in rows for key in row}


def _connect_sqlite(path: Path, *, read_only: bool = False) -> Any:
    """A connection by the same SQLite library the service uses (its file format and
    features are the ones the database was written with)."""
    if read_only:
        return _sqlite_dbapi().connect(f"file:{path}?mode=ro", uri=True)
    return _sqlite_dbapi().connect(str(path))


def _sqlite_tables(conn: Any) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return _ours([r[0] for r in rows])


def _pg_tables(conn: Connection) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    )
    return _ours([r[0] for r in rows])


@dataclass(frozen=True)
class Facts:
    """What a database holds, as a backup compares it: rows per table, the photo keys its
    rows refer to, its schema revision."""

    counts: dict[str, int]
    keys: set[str]
    revision: str | None


def _facts(query: Callable[[str], list[tuple[Any, ...]]], tables: list[str]) -> Facts:
    revision = None
    if "alembic_version" in tables:
        rows = query("SELECT version_num FROM alembic_version")
        revision = str(rows[0][0]) if rows else None
    return Facts(_counts(query, tables), _photo_keys(query, tables), revision)


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup of `source` into `target`, in one step (pages=-1): a
    consistent copy however busy the writers are."""
    src = _connect_sqlite(source, read_only=True)
    dst = _connect_sqlite(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_facts(path: Path) -> Facts:
    conn = _connect_sqlite(path, read_only=True)
    try:
        return _facts(lambda sql: conn.execute(sql).fetchall(), _sqlite_tables(conn))
    finally:
        conn.close()


def _pg_facts(conn: Connection) -> Facts:
    return _facts(lambda sql: [tuple(r) for r in conn.execute(text(sql))], _pg_tables(conn))


# --- PostgreSQL's tools ----------------------------------------------------------------------


def _pg_env(url: URL) -> dict[str, str]:
    """libpq's environment for `url`: the password stays out of the command line (and so
    out of `ps`)."""
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value is not None:
            env[var] = str(value)
    for name, setting in url.query.items():
        if name in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options"):
            env[f"PG{name.upper()}"] = str(setting)
    return env


def pg_tool(settings: Settings, name: str, server_major: int) -> str:
    """`pg_dump` or `pg_restore` of the server's major version: ROADCHIEF_PG_BIN_DIR, else
    Debian's /usr/lib/postgresql/<major>/bin, else the PATH. A pg_dump older than the
    server refuses to dump it, and one newer writes archives an older pg_restore cannot
    read: the same major keeps backup and restore symmetric."""
    candidates = []
    if settings.pg_bin_dir is not None:
        candidates.append(settings.pg_bin_dir / name)
    candidates.append(Path(f"/usr/lib/postgresql/{server_major}/bin") / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for tool in candidates:
        if not tool.exists():
            continue
        answer = subprocess.run([str(tool), "--version"], capture_output=True, text=True)
        # "pg_dump (PostgreSQL) 15.18 (Debian 15.18-1.pgdg120+1)"
        found = re.search(r"\(PostgreSQL\) (\d+)", answer.stdout)
        if answer.returncode == 0 and found and int(found.group(1)) == server_major:
            return str(tool)
    raise BackupError(
        f"{name} of PostgreSQL {server_major} not found: install postgresql-client-"
        f"{server_major} or set ROADCHIEF_PG_BIN_DIR"
    )


def _run(command: list[str], env: dict[str, str]) -> None:
    answer = subprocess.run(command, env=env, capture_output=True, text=True)
    if answer.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {answer.stderr.strip()}")


@contextmanager
def _pg_snapshot(engine: Engine) -> Iterator[tuple[Connection, str, int]]:
    """A repeatable-read transaction and its exported snapshot: pg_dump run with it sees
    the very rows the transaction counts."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = str(conn.scalar(text("SELECT pg_export_snapshot()")))
            major = int(conn.scalar(text("SHOW server_version_num")) or 0) // 10000
            yield conn, snapshot, major


def _server_major(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SHOW server_version_num")) or 0) // 10000


# --- backup ------------------------------------------------------------------------------------


def create_backup(settings: Settings, directory: Path, *, jobs: int = 8) -> Outcome:
    """Back up the database and its photos into `directory` (new or empty)."""
    from app.media.service import media_storage

    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    url = make_url(settings.database_url)
    engine_name = _engine_name(url)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "roadchief": version("roadchief"),
        "created_at": datetime.now(UTC).isoformat(),
        "engine": engine_name,
    }
    if engine_name == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"{source} does not exist")
        dump = directory / "database.sqlite3"
        _sqlite_copy(source, dump)
        facts = _sqlite_facts(dump)
    else:
        dump = directory / "database.pgdump"
        engine = create_engine(url)
        try:
            with _pg_snapshot(engine) as (conn, snapshot, major):
                tool = pg_tool(settings, "pg_dump", major)
                _run(
                    [tool, "-Fc", "--no-owner", "--snapshot", snapshot, "-f", str(dump)],
                    _pg_env(url),
                )
                facts = _pg_facts(conn)
                manifest["server_major"] = major
        finally:
            engine.dispose()
    manifest["database"] = {
        "file": dump.name,
        "bytes": dump.stat().st_size,
        "sha256": _file_sha256(dump),
    }
    manifest["schema_revision"] = facts.revision
    manifest["tables"] = facts.counts

    store = media_storage(settings)
    copied = copy_photos(
        store, LocalMediaStorage(directory / "photos"), sorted(facts.keys), jobs=jobs
    )
    files = {}
    for key in sorted(set(copied.copied) | set(copied.skipped)):
        path = directory / "photos" / key
        # Read back and checked against the key by the copy.
        files[key] = {"bytes": path.stat().st_size, "sha256": key_sha256(key)}
    manifest["photos"] = {
        "store": store.kind,
        "count": len(files),
        "bytes": sum(f["bytes"] for f in files.values()),
        "files": files,
        "missing": sorted(copied.failed),
    }
    problems = [f"photo {key}: {why}" for key, why in sorted(copied.failed.items())]
    (directory / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return Outcome(manifest, problems)


# --- restore -----------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{directory / MANIFEST} not found: not a roadchief backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"backup format {manifest.get('format')!r}, this roadchief reads {FORMAT}"
        )
    return manifest


def restore_backup(settings: Settings, directory: Path, *, jobs: int = 8) -> Outcome:
    """Restore a backup into the configured database, which must be new and empty, and
    photo store; then compare what arrived with the manifest."""
    from app.media.service import media_storage

    manifest = read_manifest(directory)
    url = make_url(settings.database_url)
    engine_name = _engine_name(url)
    if engine_name != manifest["engine"]:
        raise BackupError(f"a {manifest['engine']} backup cannot be restored into {engine_name}")
    dump = directory / manifest["database"]["file"]
    if not dump.exists() or _file_sha256(dump) != manifest["database"]["sha256"]:
        raise BackupError(f"{dump} is missing or damaged: its SHA-256 is not the manifest's")

    if engine_name == "sqlite":
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size > 0:
            conn = _connect_sqlite(target)
            try:
                if _sqlite_tables(conn):
                    raise BackupError(f"{target} is not empty: restore into a new database")
            finally:
                conn.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(dump, target)
        facts = _sqlite_facts(target)
    else:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                if _pg_tables(conn):
                    raise BackupError(f"{url.database} is not empty: restore into a new database")
            tool = pg_tool(settings, "pg_restore", _server_major(engine))
            _run(
                [tool, "--no-owner", "--no-privileges", "--exit-on-error",
                 "--single-transaction", "-d", str(url.database), str(dump)],
                _pg_env(url),
            )  # fmt: skip
            with engine.connect() as conn:
                facts = _pg_facts(conn)
        finally:
            engine.dispose()

    counts = facts.counts
    problems = [
        f"table {t}: {manifest['tables'].get(t)} rows in the backup, {counts.get(t)} restored"
        for t in sorted(set(manifest["tables"]) | set(counts))
        if manifest["tables"].get(t) != counts.get(t)
    ]
    if facts.revision != manifest["schema_revision"]:
        problems.append(
            f"schema revision {facts.revision}, the backup's {manifest['schema_revision']}"
        )
    store = media_storage(settings)
    wanted = sorted(manifest["photos"]["files"])
    copied = copy_photos(LocalMediaStorage(directory / "photos"), store, wanted, jobs=jobs)
    problems += [f"photo {key}: {why}" for key, why in sorted(copied.failed.items())]
    problems += [
        f"photo {key}: referenced by the database, not in the backup"
        for key in sorted(facts.keys - set(wanted))
        if not holds(store, key)
    ]
    return Outcome(manifest, problems)
