"""`roadchief workflow ...`: the case workflow's generated documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

workflow_cli = typer.Typer(help="The case workflow (state machine).", no_args_is_help=True)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "workflow.md"


@workflow_cli.command("doc")
def doc(
    check: Annotated[bool, typer.Option(help="Only check that the file is current.")] = False,
) -> None:
    """Write docs/workflow.md (diagram and table) from the workflow table."""
    from app.cases.workflow import workflow_markdown
    from app.core.clitools import write_generated

    write_generated(DOC_PATH, workflow_markdown(), check=check, command="roadchief workflow doc")


@workflow_cli.command("sweep")
def sweep_command() -> None:
    """Record due deadline warnings, overdue marks, escalations and missed report-ins
    (the service does this itself unless ROADCHIEF_BACKGROUND_INTERVAL_SECONDS=0)."""
    from app.cases.sweep import sweep
    from app.core.clitools import run_service

    run = run_service(lambda session, settings: sweep(session, settings))
    typer.echo(json.dumps({"recorded": run.recorded}, ensure_ascii=False))
