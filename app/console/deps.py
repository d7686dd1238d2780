"""What every console page module builds on: its router (answers in HTML, a missing session
sends the browser to sign in), the signed-in person (`Me`), the CSRF form field and the
redirects pages answer with."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from app.access.deps import ClientAddressDep
from app.access.rules import Principal
from app.console.pages import render
from app.console.session import CSRF_FIELD, PREFIX, SignInRequired, current_principal, jar
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings


class ConsoleRoute(APIRoute):
    """Answers in HTML: a missing session sends the browser to sign in, a refusal of the
    service (its Problem) becomes a page with its Chinese message and its status; cookies
    decided during the request are set on whatever answer goes out."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            try:
                response = await handle(request)
            except SignInRequired:
                response = _to_sign_in(request)
            except Problem as problem:
                response = render(
                    request, settings, "error.html", getattr(request.state, "principal", None),
                    status_code=problem.status, problem=problem,
                )  # fmt: skip
            except (RequestValidationError, ValidationError) as invalid:
                response = render(
                    request, settings, "error.html", getattr(request.state, "principal", None),
                    status_code=422, problem=None, invalid=invalid.errors(),
                )  # fmt: skip
            jar(request).apply(response, settings)
            # Pages hold personal data and CSRF tokens: never cached, never framed.
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers["X-Frame-Options"] = "DENY"
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'",
            )
            return response

        return console_handler


def _to_sign_in(request: Request) -> Response:
    target = f"{PREFIX}/login?" + urlencode({"next": request.url.path})
    if request.headers.get("HX-Request"):  # htmx follows this header, not a 303
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def console_router() -> APIRouter:
    """A page module's router: under /console, HTML answers, none in the OpenAPI document."""
    return APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def signed_in(
    request: Request, session: SessionDep, settings: SettingsDep, address: ClientAddressDep
) -> Principal:
    principal = current_principal(request, session, settings, address)
    request.state.principal = principal
    return principal


Me = Annotated[Principal, Depends(signed_in)]
CsrfField = Annotated[str | None, Form(alias=CSRF_FIELD)]


def redirect_back(url: str, flash: str) -> RedirectResponse:
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}flash={flash}", status_code=303)


def safe_next(value: str | None) -> str | None:
    """Only a path of the console itself (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return None
