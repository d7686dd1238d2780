"""Dependencies every router shares: settings and a database session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session

from app.core.database import Database, Staleness, utcnow
from app.core.moments import local_isoformat
from app.core.openapi import amend_openapi

if TYPE_CHECKING:
    from app.settings import Settings

# The dependencies that do no I/O are `async`: FastAPI runs a sync dependency in the
# thread pool, a hand-off that cost more than what these do (bench/README.md, `overhead`).


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


#: Methods that change nothing: their requests get a read-only session.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_db_session(
    request: Request, database: Annotated[Database, Depends(get_database)]
) -> AsyncIterator[Session]:
    """A session for the request; services commit what they finish, the rest rolls back.
    Requests that read get a read-only session (`Database.read_sessions`).

    Opening a session does no I/O (it connects at its first statement), so it opens in
    the event loop; closing it rolls back and returns its connection, so that runs in the
    thread pool, shielded: a client that hangs up must not leave a connection checked out."""
    session = database.new_session(write=request.method not in SAFE_METHODS)
    try:
        yield session
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.close)


#: The app's settings (`app.settings.Settings`, every domain's composed above them): core
#: names that type for the checker only, the app hands the object over at start.
SettingsDep = Annotated["Settings", Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_db_session)]

# --- reads that may come from a replica -----------------------------------------------------

#: Where a read session's data came from, and how fresh it is (every answer of a route on
#: `ReadSessionDep`; README "Read replica").
READ_FROM, DATA_AS_OF, REPLICA_LAG = "X-Read-From", "X-Data-As-Of", "X-Replica-Lag"
_STALENESS = "roadchief_staleness"


def get_read_session(
    response: Response, database: DatabaseDep, primary: SessionDep
) -> Iterator[Session]:
    """A session for a route that only reads and may read slightly old data (assessment,
    its exports, rankings): on the read replica when one is configured and close enough
    behind (`ROADCHIEF_DATABASE_READ_MAX_LAG_SECONDS`), else the request's own session
    on the primary. The answer says which, and as of when (`staleness_headers`).
    Only for GET routes: the replica refuses writes (a test holds every route to it)."""
    chosen = database.replica_session()
    if chosen is None:
        staleness = Staleness("primary", utcnow(), 0.0)
        primary.info[_STALENESS] = staleness
        response.headers.update(staleness_headers(primary))
        yield primary
        return
    replica, staleness = chosen
    replica.info[_STALENESS] = staleness
    response.headers.update(staleness_headers(replica))
    with replica:
        yield replica


def staleness_headers(session: Session) -> dict[str, str]:
    """The headers stating a read session's staleness; a route that returns a Response of
    its own (a streamed export) adds them itself."""
    staleness: Staleness | None = session.info.get(_STALENESS)
    if staleness is None:
        return {}
    return {
        READ_FROM: staleness.source,
        DATA_AS_OF: local_isoformat(staleness.as_of),
        REPLICA_LAG: f"{staleness.lag_seconds:.3f}",
    }


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def replica_readers(app: FastAPI) -> list[Any]:
    """The app's routes that read through `get_read_session` (FastAPI's route contexts:
    full path, methods, dependant)."""
    routes = [r for r in iter_route_contexts(app.routes) if hasattr(r, "dependant")]
    return [r for r in routes if depends_on(r.dependant, get_read_session)]


def depends_on(dependant: Any, call: Any) -> bool:
    """Whether a route's dependant (FastAPI's tree of dependencies) calls `call` anywhere."""
    pending = [dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is call:
            return True
        pending.extend(dependant.dependencies)
    return False


_HEADER_DOCS = {
    READ_FROM: ("`primary` or `replica`: the server the data was read from.", "replica"),
    DATA_AS_OF: (
        "The data holds every change committed up to this moment (the replica's replay).",
        "2026-11-18T10:00:00+08:00",
    ),
    REPLICA_LAG: ("Seconds the data is behind the primary (0 on the primary).", "0.125"),
}
_HEADERS_OPENAPI = {
    name: {"description": text, "schema": {"type": "string", "examples": [example]}}
    for name, (text, example) in _HEADER_DOCS.items()
}


def document_read_headers(app: FastAPI) -> None:
    """List the staleness headers under the success answer of every route that reads
    through `get_read_session`, in the app's OpenAPI document."""

    def amend(document: dict[str, Any]) -> None:
        for route in replica_readers(app):
            for method in route.methods:
                operation = document["paths"][route.path_format][method.lower()]
                answer = operation["responses"].get(str(route.status_code or 200))
                if answer is not None:
                    answer.setdefault("headers", {}).update(_HEADERS_OPENAPI)

    amend_openapi(app, amend)
