"""The `roadchief` command: database, territory import, demo city, server, OpenAPI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic import command
from alembic.config import Config

import app.wiring  # noqa: F401  (the domains' registrations)
from app.accounts.cli import users_cli
from app.assessment.cli import assessment_cli
from app.backup.cli import backup_cli
from app.cases.cli import workflow_cli
from app.core.config import SettingsError
from app.media.cli import media_cli
from app.notifications.cli import webhooks_cli
from app.patrols.cli import patrols_cli
from app.routing.cli import routing_cli
from app.settings import Settings, get_settings

cli = typer.Typer(help="roadchief: the 路长制 road-chief system backend.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
territory_cli = typer.Typer(help="Territory data.", no_args_is_help=True)
demo_cli = typer.Typer(help="The demo city (金河区).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(territory_cli, name="territory")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(users_cli, name="users")
cli.add_typer(routing_cli, name="routing")
cli.add_typer(media_cli, name="photos")
# The group's first name, kept for the cron lines written with it.
cli.add_typer(media_cli, name="media", hidden=True)
cli.add_typer(workflow_cli, name="workflow")
cli.add_typer(assessment_cli, name="assessment")
cli.add_typer(webhooks_cli, name="webhooks")
cli.add_typer(patrols_cli, name="patrols")
cli.add_typer(backup_cli, name="backup")

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENAPI_PATH = REPO_ROOT / "openapi" / "openapi.json"


def _alembic_config() -> Config:
    from app.core.schema import alembic_config

    return alembic_config()


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database (DATABASE_URL) up to REVISION."""
    command.upgrade(_alembic_config(), revision)


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION ('base' empties it)."""
    command.downgrade(_alembic_config(), revision)


@db_cli.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    command.current(_alembic_config(), verbose=False)


@territory_cli.command("import")
def territory_import(
    layer: Annotated[
        str,
        typer.Argument(
            help="jurisdictions, units, grid_cells, road_segments, assets, workstations or shops"
        ),
    ],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import one layer from a GeoJSON FeatureCollection: all features or none."""
    from app.core.database import Database
    from app.core.errors import Problem
    from app.standards.identifiers import national_id_issues
    from app.territory.importer import Layer, import_layer

    try:
        layer_enum = Layer(layer)
    except ValueError:
        typer.echo(
            f"unknown layer {layer!r}; one of: {', '.join(item.value for item in Layer)}",
            err=True,
        )
        raise typer.Exit(2) from None
    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"{file}: not JSON ({exc})", err=True)
        raise typer.Exit(1) from None
    try:
        with database.sessions() as session:
            result = import_layer(session, settings, layer_enum, document, national_id_issues)
    except Problem as problem:
        typer.echo(json.dumps(problem.body(), ensure_ascii=False, indent=2), err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    typer.echo(f"{result.layer}: {result.created} created, {result.updated} updated")


@demo_cli.command("load")
def demo_load(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when territory exists.")
    ] = False,
    scale: Annotated[float, typer.Option(help="Area multiplier; 1 is the shipped city.")] = 1.0,
) -> None:
    """Load the demo city, its demo users and the shipped routing tables (after `db upgrade`)."""
    from app.access.rules import SYSTEM
    from app.core.database import Database
    from app.demo.loader import load_demo_city, territory_is_empty
    from app.demo.users import create_demo_users, is_demo_city
    from app.routing.shipped import load_shipped_routing

    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with database.sessions() as session:
            if if_empty and not territory_is_empty(session):
                typer.echo("demo city: territory already loaded")
            else:
                for result in load_demo_city(session, settings, scale=scale):
                    typer.echo(
                        f"demo city: {result.layer}: {result.created} created, "
                        f"{result.updated} updated"
                    )
            if is_demo_city(session):
                created = create_demo_users(session, settings)
                typer.echo(f"demo city: {len(created)} demo users created")
            for line in load_shipped_routing(session, SYSTEM):
                typer.echo(f"routing: {line}")
    finally:
        database.dispose()


@demo_cli.command("logins")
def demo_logins(
    base_url: Annotated[str | None, typer.Option(help="Where the API will listen.")] = None,
) -> None:
    """Print the demo users' logins."""
    from app.demo.users import demo_logins_text

    typer.echo(demo_logins_text(base_url))


@demo_cli.command("generate")
def demo_generate(
    out: Annotated[Path, typer.Option(help="Directory for the layer files.")],
    scale: Annotated[float, typer.Option(help="Area multiplier.")] = 1.0,
) -> None:
    """Write the demo city's layers as GeoJSON files."""
    from app.demo.citygen import write_city

    write_city(out, scale=scale)
    typer.echo(f"demo city at scale {scale} written to {out}")


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    demo_logins: Annotated[bool, typer.Option(help="Also print the demo users' logins.")] = False,
) -> None:
    """Run the API with uvicorn and print where to look."""
    import uvicorn

    settings = get_settings()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    typer.echo(f"roadchief is starting on {settings.database_url}")
    typer.echo(f"  web console:          {base}/console")
    typer.echo(f"  interactive API docs: {base}/docs")
    typer.echo(f"  OpenAPI document:     {base}/openapi.json")
    if demo_logins:
        from app.demo.users import demo_logins_text

        typer.echo(demo_logins_text(base))
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(settings),
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the service (also the bench's bare floor app's)."""
    return {
        "log_config": None,
        # Bounds on what clients can hold open; the request bodies are bounded by the app
        # (README, "Running in production").
        "limit_concurrency": settings.server_limit_concurrency,
        "timeout_keep_alive": settings.server_timeout_keep_alive_seconds,
        "timeout_graceful_shutdown": settings.server_timeout_graceful_shutdown_seconds,
        # uvicorn would believe X-Forwarded-For from any local process; the app believes
        # only ROADCHIEF_TRUSTED_PROXIES (app.main).
        "proxy_headers": False,
    }


def openapi_text() -> str:
    """The OpenAPI document as committed in openapi/openapi.json."""
    from app.main import create_app

    settings = Settings(database_url="sqlite:///:memory:")
    app = create_app(settings)
    try:
        return json.dumps(app.openapi(), ensure_ascii=False, indent=2) + "\n"
    finally:
        app.state.database.dispose()


@cli.command("openapi")
def openapi(
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the committed file differs.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Where to write.")] = OPENAPI_PATH,
) -> None:
    """Write (or check) the OpenAPI document generated from the app."""
    from app.core.clitools import write_generated

    write_generated(out, openapi_text(), check=check, command="roadchief openapi")


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        print(f"roadchief: {exc}", file=sys.stderr)
        sys.exit(2)
