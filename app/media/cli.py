"""`roadchief media ...`: housekeeping of the photo store."""

from __future__ import annotations

import typer

from app.core.clitools import run_service

media_cli = typer.Typer(help="Photo storage.", no_args_is_help=True)


@media_cli.command("sweep")
def sweep() -> None:
    """Remove uploaded photos that no report used within ROADCHIEF_PHOTO_ORPHAN_HOURS."""
    from app.media.service import sweep_orphans

    removed = run_service(sweep_orphans)
    typer.echo(f"media: {removed} unused photos removed")
