"""`roadchief assessment ...`: the KPI definitions' generated documentation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

assessment_cli = typer.Typer(help="Assessment (KPIs, rankings).", no_args_is_help=True)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"


@assessment_cli.command("doc")
def doc(
    check: Annotated[bool, typer.Option(help="Only check that the file is current.")] = False,
) -> None:
    """Write docs/kpis.md from the KPI table."""
    from app.assessment.kpis import kpi_markdown, parse_weights
    from app.core.clitools import write_generated
    from app.core.config import Settings

    weights = parse_weights(Settings.model_fields["assessment_weights"].default)
    write_generated(DOC_PATH, kpi_markdown(weights), check=check,
                    command="roadchief assessment doc")  # fmt: skip
