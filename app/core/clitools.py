"""What every `roadchief` sub-command shares: a session, and problems printed as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy.orm import Session

from app.core.config import loaded_settings
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings

T = TypeVar("T")


@contextmanager
def service_session(*, write: bool = True) -> Iterator[tuple[Session, Settings]]:
    from app.core.database import Database

    settings = loaded_settings()
    database = Database.from_settings(settings)
    try:
        with (database.sessions if write else database.read_sessions)() as session:
            yield session, settings
    finally:
        database.dispose()


def run_service(action: Callable[[Session, Settings], T], *, write: bool = True) -> T:
    """Run a service call; a problem becomes its JSON body on stderr and exit 1. An action
    that reads long before it writes a little takes a read-only session (`write=False`)."""
    with service_session(write=write) as (session, settings):
        try:
            return action(session, settings)
        except Problem as problem:
            typer.echo(json.dumps(problem.body(), ensure_ascii=False, indent=2), err=True)
            raise typer.Exit(1) from None


def write_generated(path: Path, text: str, *, check: bool, command: str) -> None:
    """Write a generated file, or (check) exit 1 if the committed one differs."""
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            typer.echo(f"{path} is out of date: run `{command}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}")
