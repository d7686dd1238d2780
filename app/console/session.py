"""The console's browser session (控制台会话): the API's own tokens, kept in cookies.

Signing in is `app.accounts.signin.login` (the same password check, throttle and audit as
`POST /api/v1/auth/token`); the pair it issues lives in two cookies, both `Secure`,
`HttpOnly` and `SameSite=Strict`: the access token (read on every page exactly as the API
reads a bearer token, `TokenStates` included, so a disabled account or a changed password
ends the console session too) and the refresh token, sent only under `/console`, spent
through `signin.refresh` when the access token expires. Signing out is `signin.logout`.

Every POST carries a CSRF token (signed double submit, as OWASP describes it): a random
value in a third cookie and, in the form or the `X-CSRF-Token` header, its HMAC under the
service's signing key. A page on another site can neither read the cookie nor compute the
HMAC of one it planted, and SameSite=Strict keeps the cookies off its requests anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request, Response
from sqlalchemy.orm import Session

from app.access.rules import Principal
from app.accounts import signin
from app.accounts.schemas import TokenPair
from app.accounts.token_state import TokenStates
from app.accounts.tokens import read_access_token, signing_key
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings

ACCESS_COOKIE = "rc_console_access"
REFRESH_COOKIE = "rc_console_refresh"
CSRF_COOKIE = "rc_console_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PREFIX = "/console"


class SignInRequired(Exception):
    """No usable session: the console answers with the sign-in page."""


class CsrfRefused(Problem):
    code = "csrf_refused"
    status = 403
    title = "页面已失效，请刷新后重试"


@dataclass
class CookieJar:
    """Cookies the response must set or clear, decided while the request ran."""

    put: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)

    def apply(self, response: Response, settings: Settings) -> None:
        for name, (value, max_age, path) in self.put.items():
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path=path,
                secure=settings.console_secure_cookies,
                httponly=True,
                samesite="strict",
            )
        for name in self.drop:
            response.delete_cookie(
                name,
                path=PREFIX if name == REFRESH_COOKIE else "/",
                secure=settings.console_secure_cookies,
                httponly=True,
                samesite="strict",
            )


def jar(request: Request) -> CookieJar:
    found = getattr(request.state, "console_cookies", None)
    if found is None:
        found = CookieJar()
        request.state.console_cookies = found
    return found


def keep_pair(request: Request, settings: Settings, pair: TokenPair) -> None:
    cookies = jar(request)
    cookies.put[ACCESS_COOKIE] = (pair.access_token, None, "/")
    cookies.put[REFRESH_COOKIE] = (pair.refresh_token, pair.refresh_expires_in, PREFIX)
    cookies.drop -= {ACCESS_COOKIE, REFRESH_COOKIE}


def forget_pair(request: Request) -> None:
    cookies = jar(request)
    cookies.drop |= {ACCESS_COOKIE, REFRESH_COOKIE}
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        cookies.put.pop(name, None)


def current_principal(
    request: Request, session: Session, settings: Settings, address: str | None
) -> Principal:
    """The signed-in person, as the API would see their bearer token; an expired access
    token is renewed with the refresh token (rotated, as the phone does)."""
    states: TokenStates = request.app.state.token_states
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            token = read_access_token(access, settings)
            states.require_current(session, token)
            return token.principal
        except Problem:
            pass  # expired or revoked: try the refresh token below
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        raise SignInRequired
    try:
        pair = signin.refresh(session, settings, refresh, address)
    except Problem:
        forget_pair(request)
        raise SignInRequired from None
    keep_pair(request, settings, pair)
    token = read_access_token(pair.access_token, settings)
    return token.principal


# --- CSRF ----------------------------------------------------------------------------------


def _sign(settings: Settings, value: str) -> str:
    key = hashlib.sha256(b"console-csrf:" + signing_key(settings)).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, settings: Settings) -> str:
    """The token this browser's forms carry (the cookie is made on first use)."""
    cookies = jar(request)
    planned = cookies.put.get(CSRF_COOKIE)
    value = planned[0] if planned else request.cookies.get(CSRF_COOKIE)
    if not value:
        value = secrets.token_urlsafe(32)
        cookies.put[CSRF_COOKIE] = (value, None, "/")
    return _sign(settings, value)


def renew_csrf(request: Request) -> None:
    """A new CSRF secret at sign-in and sign-out (no token outlives the session it was
    shown in)."""
    jar(request).put[CSRF_COOKIE] = (secrets.token_urlsafe(32), None, "/")


def check_csrf(request: Request, settings: Settings, sent: str | None) -> None:
    value = request.cookies.get(CSRF_COOKIE)
    sent = sent or request.headers.get(CSRF_HEADER)
    if not value or not sent or not hmac.compare_digest(_sign(settings, value), sent):
        raise CsrfRefused("表单校验失败（CSRF），请刷新页面后重试")
