"""Signing in and out of the console (登录、退出): the API's password grant, its
tokens kept in cookies (see `app.console.session`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from app.access.deps import ClientAddressDep
from app.accounts import signin
from app.accounts.tokens import read_access_token
from app.console.deps import CsrfField, Me, console_router, safe_next
from app.console.pages import home_of, render
from app.console.session import (
    PREFIX,
    REFRESH_COOKIE,
    check_csrf,
    forget_pair,
    keep_pair,
    renew_csrf,
)
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem

router = console_router()


@router.get("")
def console_home(request: Request, me: Me) -> Response:
    return RedirectResponse(home_of(me), status_code=303)


@router.get("/login")
def login_page(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    return render(request, settings, "login.html", None, next=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    csrf: CsrfField = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    """The API's password grant (throttle and audit included); the pair goes to cookies."""
    check_csrf(request, settings, csrf)
    try:
        pair = signin.login(session, settings, username, password, address)
    except Problem as problem:
        return render(
            request, settings, "login.html", None, status_code=problem.status,
            error=problem.detail or problem.title, username=username, next=safe_next(next),
        )  # fmt: skip
    keep_pair(request, settings, pair)
    renew_csrf(request)
    principal = read_access_token(pair.access_token, settings).principal
    return RedirectResponse(safe_next(next) or home_of(principal), status_code=303)


@router.post("/logout")
def logout(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if refresh:
        signin.logout(session, refresh, address)
    forget_pair(request)
    renew_csrf(request)
    return RedirectResponse(f"{PREFIX}/login?flash=signed_out", status_code=303)
