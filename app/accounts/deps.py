"""How the accounts vouch for a caller (`app.access.deps.Authenticator`): a bearer access
token its user still stands behind, or an API key; and the same check made by the body
gate before a body is read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.routing import APIRoute
from starlette.datastructures import State
from starlette.requests import HTTPConnection

from app.access.deps import api_key_scheme, bearer_scheme, requires_principal
from app.access.rules import Principal, missing_credentials
from app.accounts.api_keys import api_key_invalid, principal_from_api_key
from app.accounts.token_state import TokenStates
from app.accounts.tokens import api_key_prefix, read_access_token
from app.core.database import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.settings import Settings


class AccountAuthenticator:
    """`Authenticator` over the accounts: a token's signature and claims, then its user's
    token state (remembered per process: the app state's `token_states`, which the console
    reads too); an API key's row."""

    def __init__(self, app_state: State) -> None:
        self._state = app_state

    @property
    def token_states(self) -> TokenStates:
        states: TokenStates = self._state.token_states
        return states

    def remembered(self, token: str, settings: Settings) -> Principal | None:
        access = read_access_token(token, settings)
        return access.principal if self.token_states.require_remembered(access) else None

    def bearer(self, session: Session, token: str, settings: Settings) -> Principal:
        access = read_access_token(token, settings)  # remembered: no second signature check
        self.token_states.require_current(session, access)
        return access.principal

    def api_key(self, session: Session, key: str) -> Principal:
        return principal_from_api_key(session, key, utcnow())


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
    token = await bearer_scheme(connection)
    if token:
        # The signature and expiry; whether the user still stands behind the token is
        # `get_principal`'s check (a database read), once the route runs.
        read_access_token(token, settings)
        return True
    api_key = await api_key_scheme(connection)
    if api_key:
        if api_key_prefix(api_key) is None:
            raise api_key_invalid()
        return False
    raise missing_credentials()
