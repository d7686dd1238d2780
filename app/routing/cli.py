"""`roadchief routing ...`: the taxonomy and routing tables from the server's shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.access.rules import SYSTEM
from app.core.clitools import run_service

routing_cli = typer.Typer(help="Problem taxonomy and routing tables.", no_args_is_help=True)

FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="A YAML or JSON file.")
]


@routing_cli.command("load-shipped")
def load_shipped() -> None:
    """Load the shipped taxonomy and the Huiji (active) and Dengfeng tables, if none exist;
    where an earlier edition of a shipped table is stored, add the current one (in force
    where the earlier one is)."""
    from app.routing.shipped import load_shipped_routing

    done = run_service(lambda s, _: load_shipped_routing(s, SYSTEM))
    typer.echo("\n".join(done) or "routing: taxonomy and rule sets already present and current")


@routing_cli.command("import-taxonomy")
def import_taxonomy(path: FileArgument) -> None:
    """Replace the taxonomy with the file's (categories left out become inactive)."""
    from app.routing.schemas import TaxonomyDocument
    from app.routing.taxonomy import import_taxonomy, read_document

    document = TaxonomyDocument.model_validate(read_document(path))
    result = run_service(lambda s, _: import_taxonomy(s, SYSTEM, document))
    typer.echo(
        f"taxonomy: {result.created} created, {result.updated} updated, "
        f"{result.deactivated} deactivated"
    )


@routing_cli.command("upload")
def upload(
    path: FileArgument,
    activate: Annotated[bool, typer.Option(help="Put it in force at once.")] = False,
) -> None:
    """Store the file as the next rule-set version (refused whole if anything is wrong)."""
    from app.routing.rule_sets import upload_rule_set
    from app.routing.schemas import RuleSetDocument
    from app.routing.taxonomy import read_document

    document = RuleSetDocument.model_validate(read_document(path))
    out = run_service(lambda s, _: upload_rule_set(s, SYSTEM, document, activate=activate))
    typer.echo(f"rule set v{out.version} {out.name}: {out.status.value}")


@routing_cli.command("activate")
def activate(version: int, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Put VERSION in force."""
    from app.routing.rule_sets import activate_rule_set

    out = run_service(lambda s, _: activate_rule_set(s, SYSTEM, version, reason))
    typer.echo(f"rule set v{out.version} {out.name}: active")


@routing_cli.command("rollback")
def rollback(reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Put the previously active version back in force."""
    from app.routing.rule_sets import roll_back_rule_set

    out = run_service(lambda s, _: roll_back_rule_set(s, SYSTEM, reason))
    typer.echo(f"rule set v{out.version} {out.name}: active again")


@routing_cli.command("list")
def list_versions() -> None:
    """Every rule-set version, newest first."""
    from app.routing.rule_sets import list_rule_sets

    for r in run_service(lambda s, _: list_rule_sets(s, SYSTEM)):
        typer.echo(f"v{r.version:<4} {r.status.value:<8} {r.rule_count:>4} rules  {r.name}")
