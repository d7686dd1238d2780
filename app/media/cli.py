"""`roadchief photos ...`: housekeeping of the photo store, and moving it."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from app.core.clitools import run_service

if TYPE_CHECKING:
    from app.settings import Settings

media_cli = typer.Typer(help="Photo storage.", no_args_is_help=True)


class Store(StrEnum):
    S3 = "s3"
    LOCAL = "local"


@media_cli.command("sweep")
def sweep() -> None:
    """Remove uploaded photos that no report used within ROADCHIEF_PHOTO_ORPHAN_HOURS."""
    from app.media.service import sweep_orphans

    removed = run_service(sweep_orphans)
    typer.echo(f"media: {removed} unused photos removed")


@media_cli.command("move")
def move(
    to: Annotated[
        Store,
        typer.Option("--to", help="s3: from ROADCHIEF_MEDIA_DIR to the bucket; local: back."),
    ],
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Photos copied at once.")] = 8,
) -> None:
    """Copy every photo from one store to the other, each read back and checked against
    its SHA-256; what the target already holds is skipped, so an interrupted run resumes.
    Nothing is deleted at the source. Then set ROADCHIEF_PHOTO_STORE and restart, and run
    the command again to copy what arrived meanwhile."""
    from sqlalchemy.orm import Session

    from app.media.transfer import move_photos

    def action(session: Session, settings: Settings) -> bool:
        if not settings.s3_bucket:
            typer.echo("photos: set ROADCHIEF_S3_BUCKET (and the endpoint) first", err=True)
            raise typer.Exit(2)
        result = move_photos(session, settings, to.value, jobs=jobs)
        for key, why in sorted(result.failed.items()):
            typer.echo(f"  {key}: {why}", err=True)
        for key in result.missing:
            typer.echo(f"  {key}: referenced by a photo, in neither store", err=True)
        source = "local" if to is Store.S3 else "s3"
        typer.echo(f"photos: {source} → {to.value}: {result.summary()}")
        return result.ok

    if not run_service(action, write=False):
        raise typer.Exit(1)
