"""`roadchief workflow ...`: the case workflow's generated documentation."""

from __future__ import annotations

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

    text = workflow_markdown()
    if check:
        if not DOC_PATH.exists() or DOC_PATH.read_text(encoding="utf-8") != text:
            typer.echo(f"{DOC_PATH} is out of date: run `roadchief workflow doc`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{DOC_PATH} is up to date")
        return
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {DOC_PATH}")
