"""FastAPI dependencies that find out who is calling. They decide nothing else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from app.accounts.access import Principal
from app.accounts.api_keys import principal_from_api_key
from app.accounts.tokens import missing_credentials, principal_from_access_token
from app.core.database import utcnow
from app.core.deps import SessionDep, SettingsDep

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


def get_principal(
    settings: SettingsDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from a bearer access token (no database round trip) or an API key."""
    if token:
        return principal_from_access_token(token, settings)
    if api_key:
        return principal_from_api_key(session, api_key, utcnow())
    raise missing_credentials()


def client_address(request: Request) -> str | None:
    """The caller's address (uvicorn's --proxy-headers applies X-Forwarded-For)."""
    return request.client.host if request.client else None


PrincipalDep = Annotated[Principal, Depends(get_principal)]
ClientAddressDep = Annotated[str | None, Depends(client_address)]
