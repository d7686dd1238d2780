"""FastAPI dependencies that find out who is calling. They decide nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.accounts.access import Principal, SignedIn
from app.accounts.api_keys import api_key_invalid, principal_from_api_key
from app.accounts.token_state import TokenStates
from app.accounts.tokens import api_key_prefix, missing_credentials, read_access_token
from app.core.database import utcnow
from app.core.deps import SessionDep, SettingsDep

if TYPE_CHECKING:
    from app.settings import Settings

TOKEN_URL = "/api/v1/auth/token"

_bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="Sign in at `/api/v1/auth/token` (OAuth2 password flow).",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A read-only key an admin created for a machine client.",
)


async def get_token_states(request: Request) -> TokenStates:
    # async: no I/O here, so no hop to the thread pool that sync dependencies take.
    states: TokenStates = request.app.state.token_states
    return states


async def get_principal(
    settings: SettingsDep,
    session: SessionDep,
    token_states: Annotated[TokenStates, Depends(get_token_states)],
    token: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from a bearer access token its user still stands behind (checked on
    every authenticated route) or from an API key.

    `async`: the token's signature and the remembered token state need no I/O, and most
    requests need nothing more; the reads (a state not remembered, an API key) go to the
    thread pool."""
    if token:
        access = read_access_token(token, settings)
        if not token_states.require_remembered(access):
            await run_in_threadpool(token_states.require_current, session, access)
        return access.principal
    if api_key:
        return await run_in_threadpool(principal_from_api_key, session, api_key, utcnow())
    raise missing_credentials()


def requires_principal(route: APIRoute) -> bool:
    """Whether the route asks who is calling (every route but sign-in and the probes)."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is get_principal:
            return True
        pending.extend(dependant.dependencies)
    return False


async def credentials_before_body(
    route: APIRoute, connection: HTTPConnection, settings: Settings
) -> bool:
    """The check of `get_principal`, made by the body gate before a body is read (FastAPI
    reads it before dependencies run): the same 401 problems, in the same order. True when
    the caller is verified or the route public; False for an API key of the right form,
    whose row `get_principal` looks up when the route runs (API keys are read-only: the
    gate lets them send the default body limit at most)."""
    if not requires_principal(route):
        return True
    token = await _bearer(connection)
    if token:
        # The signature and expiry; whether the user still stands behind the token is
        # `get_principal`'s check (a database read), once the route runs.
        read_access_token(token, settings)
        return True
    api_key = await _api_key(connection)
    if api_key:
        if api_key_prefix(api_key) is None:
            raise api_key_invalid()
        return False
    raise missing_credentials()


async def client_address(request: Request) -> str | None:
    """The caller's address: the connecting peer, or what a trusted proxy says it is
    (ROADCHIEF_TRUSTED_PROXIES; see app.main)."""
    return request.client.host if request.client else None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_signed_in(principal: PrincipalDep) -> SignedIn:
    return SignedIn.of(principal)


#: Routes that belong to a person (patrols, check-ins, visits, inspections, the inbox).
SignedInDep = Annotated[SignedIn, Depends(get_signed_in)]
ClientAddressDep = Annotated[str | None, Depends(client_address)]
