"""`roadchief patrols ...`: measuring patrols again from cron."""

from __future__ import annotations

import json

import typer

patrols_cli = typer.Typer(help="Patrols.", no_args_is_help=True)


@patrols_cli.command("remeasure")
def remeasure() -> None:
    """Measure again the ended patrols that late fixes reached (the service does this
    itself unless ROADCHIEF_BACKGROUND_INTERVAL_SECONDS=0)."""
    from app.core.clitools import run_service
    from app.patrols.service import remeasure_due

    measured = run_service(remeasure_due, write=False)
    typer.echo(json.dumps({"remeasured": measured}))
