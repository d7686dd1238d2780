"""FastAPI dependencies that find out who is calling, for every domain's routers. They
decide nothing else.

How a bearer token or an API key is checked belongs to the accounts
(`accounts.deps.AccountAuthenticator`, handed to the app at start as
`app.state.authenticator`): territory, below the accounts, learns who calls it without
importing them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from app.access.rules import Principal, SignedIn, missing_credentials
from app.core.deps import SessionDep, SettingsDep, depends_on

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.settings import Settings

TOKEN_URL = "/api/v1/auth/token"

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    description="Sign in at `/api/v1/auth/token` (OAuth2 password flow).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A read-only key an admin created for a machine client.",
)


class Authenticator(Protocol):
    """Who a credential speaks for (401 problems when it speaks for no one)."""

    def remembered(self, token: str, settings: Settings) -> Principal | None:
        """The token's caller when no I/O is needed to vouch for it, else None."""

    def bearer(self, session: Session, token: str, settings: Settings) -> Principal:
        """The token's caller, reading what must be read."""

    def api_key(self, session: Session, key: str) -> Principal:
        """The key's caller."""


async def get_authenticator(request: Request) -> Authenticator:
    # async: no I/O here, so no hop to the thread pool that sync dependencies take.
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def get_principal(
    settings: SettingsDep,
    session: SessionDep,
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
    token: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller, from a bearer access token its user still stands behind (checked on
    every authenticated route) or from an API key.

    `async`: the token's signature and the remembered token state need no I/O, and most
    requests need nothing more; the reads (a state not remembered, an API key) go to the
    thread pool."""
    if token:
        principal = authenticator.remembered(token, settings)
        if principal is None:
            principal = await run_in_threadpool(authenticator.bearer, session, token, settings)
        return principal
    if api_key:
        return await run_in_threadpool(authenticator.api_key, session, api_key)
    raise missing_credentials()


def requires_principal(route: APIRoute) -> bool:
    """Whether the route asks who is calling (every route but sign-in and the probes)."""
    return depends_on(route.dependant, get_principal)


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
