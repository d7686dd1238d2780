"""`roadchief webhooks ...`: deliver the outbox from cron."""

from __future__ import annotations

import json

import typer

webhooks_cli = typer.Typer(help="Webhook delivery.", no_args_is_help=True)


@webhooks_cli.command("deliver")
def deliver() -> None:
    """Send every webhook delivery now due (the service does this itself unless
    ROADCHIEF_BACKGROUND_INTERVAL_SECONDS=0)."""
    from app.core.clitools import run_service
    from app.core.config import loaded_settings
    from app.notifications.delivery import deliver_due, webhook_client

    with webhook_client(loaded_settings()) as client:
        run = run_service(lambda session, settings: deliver_due(session, settings, client))
    typer.echo(json.dumps(vars(run)))
