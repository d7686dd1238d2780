"""`roadchief assessment ...`: the KPI definitions' generated documentation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

assessment_cli = typer.Typer(help="Assessment (KPIs, rankings).", no_args_is_help=True)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"


@assessment_cli.command("doc")
def doc(
    check: Annotated[bool, typer.Option(help="Only check that the file is current.")] = False,
) -> None:
    """Write docs/kpis.md from the KPI table."""
    from app.assessment.kpis import kpi_markdown, parse_weights
    from app.assessment.settings import AssessmentSettings
    from app.core.clitools import write_generated

    weights = parse_weights(AssessmentSettings.model_fields["assessment_weights"].default)
    write_generated(DOC_PATH, kpi_markdown(weights), check=check,
                    command="roadchief assessment doc")  # fmt: skip


@assessment_cli.command("close")
def close(
    label: Annotated[str, typer.Argument(help="A month (2026-10) or week (2026-W43).")],
) -> None:
    """Freeze a finished period's figures (for cron, early each month and week)."""
    from app.access.rules import SYSTEM
    from app.assessment.periods import close_period
    from app.core.clitools import run_service

    period = run_service(lambda session, settings: close_period(session, settings, SYSTEM, label))
    typer.echo(f"{period.label}: frozen {len(period.snapshots)} answers at {period.closed_at}")


@assessment_cli.command("rebuild-facts")
def rebuild_facts() -> None:
    """Recompute the KPI facts from the case events (after importing a city's history)."""
    from app.cases.facts import rebuild
    from app.core.clitools import run_service

    def run(session: Session, _settings: object) -> int:
        written = rebuild(session)
        session.commit()
        return written

    typer.echo(f"case_facts: {run_service(run)} rows rebuilt from the events")
