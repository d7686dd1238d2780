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
    from app.core.clitools import write_generated

    write_generated(DOC_PATH, workflow_markdown(), check=check, command="roadchief workflow doc")
