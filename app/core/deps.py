"""Dependencies every router shares: settings and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.database import Database


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


#: Methods that change nothing: their requests get a read-only session.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db_session(
    request: Request, database: Annotated[Database, Depends(get_database)]
) -> Iterator[Session]:
    """A session for the request; services commit what they finish, the rest rolls back.
    Requests that read get a read-only session (`Database.read_sessions`)."""
    yield from database.session(write=request.method not in SAFE_METHODS)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_db_session)]
