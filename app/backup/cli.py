"""`roadchief backup create|restore DIR`: the database and its photos, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

backup_cli = typer.Typer(help="Backups of the database and the photos.", no_args_is_help=True)

Directory = Annotated[Path, typer.Argument(file_okay=False, help="The backup's directory.")]
Jobs = Annotated[int, typer.Option(min=1, max=64, help="Photos copied at once.")]


def _finish(what: str, outcome: object) -> None:
    from app.backup.service import Outcome

    assert isinstance(outcome, Outcome)
    manifest = outcome.manifest
    rows = sum(manifest["tables"].values())
    photos = manifest["photos"]
    typer.echo(
        f"backup: {what}: {manifest['engine']} at {manifest['schema_revision']}, "
        f"{len(manifest['tables'])} tables, {rows} rows, {photos['count']} photo files "
        f"({photos['bytes']} bytes)"
    )
    for problem in outcome.problems:
        typer.echo(f"  {problem}", err=True)
    if not outcome.ok:
        raise typer.Exit(1)


@backup_cli.command("create")
def create(directory: Directory, jobs: Jobs = 8) -> None:
    """Back up the database (SQLite's online backup, or pg_dump -Fc of the server's major
    version) and every photo it refers to into DIRECTORY (new or empty), with a manifest of
    row counts and SHA-256 checksums. Safe while the service runs."""
    from app.backup.service import BackupError, create_backup
    from app.core.config import loaded_settings

    try:
        outcome = create_backup(loaded_settings(), directory, jobs=jobs)
    except BackupError as exc:
        typer.echo(f"backup: {exc}", err=True)
        raise typer.Exit(1) from None
    _finish(f"written to {directory}", outcome)


@backup_cli.command("restore")
def restore(directory: Directory, jobs: Jobs = 8) -> None:
    """Restore DIRECTORY into the configured database (new and empty: a new SQLite file, or
    a database made with createdb) and photo store, then check every table's row count and
    every photo's SHA-256 against the manifest. Exits 1 on any difference."""
    from app.backup.service import BackupError, restore_backup
    from app.core.config import loaded_settings

    try:
        outcome = restore_backup(loaded_settings(), directory, jobs=jobs)
    except BackupError as exc:
        typer.echo(f"backup: {exc}", err=True)
        raise typer.Exit(1) from None
    _finish(f"restored from {directory}", outcome)
