"""Request bodies at the edge (请求体): who may send one, how big, how fast.

FastAPI reads and parses a body before it resolves any dependency, so neither the
credentials check of a route nor a size check inside it can stop an anonymous 400 MB
upload. `BodyGate` is a pure ASGI middleware that wraps `receive`. On the route's first
read, before any body byte is taken, it has the caller's credentials checked (the app
passes in the check, the one `get_principal` makes) and refuses a declared length over the
route's limit; then it counts the bytes as they stream, chunked bodies included, and cuts
off a body that arrives too slowly. Refusals are problems (413, 408, the 401 of the
credentials) answered by the app's problem handlers, with `Connection: close`: the rest of
the body is never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import anyio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import (
    BodyNotUtf8,
    BodyUnreadable,
    FormInvalid,
    FormLimitExceeded,
    Problem,
    ProblemInBody,
    add_problem_responses,
)
from app.core.openapi import amend_openapi

if TYPE_CHECKING:
    from app.settings import Settings

#: A route's body limit in bytes, read from the settings of the app serving it.
BodyLimit = Callable[["Settings"], int]
#: Checks the caller of `route` before its body is read: raises the 401 problem, else
#: answers whether the credentials are fully verified (False: an API key whose row is only
#: looked up when the route runs; such a caller may send the default limit at most).
CredentialCheck = Callable[[APIRoute, HTTPConnection, "Settings"], Awaitable[bool]]

#: Room for a multipart body's boundaries and part headers beside the files themselves.
MULTIPART_FRAMING_BYTES = 64 * 1024

_LIMIT_ATTRIBUTE = "roadchief_body_limit"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class BodyTooLarge(Problem):
    code = "body_too_large"
    status = 413
    title = "请求体过大"


class BodyTimeout(Problem):
    code = "body_timeout"
    status = 408
    title = "请求体接收超时"


def body_limit(limit: BodyLimit) -> Callable[[Endpoint], Endpoint]:
    """Give a route a larger body limit than `body_max_bytes` (uploads, imports); put it
    under the route's decorator: `@body_limit(lambda s: s.territory_import_max_bytes)`."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _LIMIT_ATTRIBUTE, limit)
        return endpoint

    return mark


def route_body_limit(route: object, settings: Settings) -> int:
    """The body limit of a matched route (the default for anything else)."""
    limit: BodyLimit | None = getattr(getattr(route, "endpoint", None), _LIMIT_ATTRIBUTE, None)
    return settings.body_max_bytes if limit is None else limit(settings)


def _refuse(problem: Problem) -> ProblemInBody:
    problem.headers = {**(problem.headers or {}), "Connection": "close"}
    return ProblemInBody(problem)


class _GuardedBody:
    """One request's body, admitted on the first read and counted as it arrives."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        settings: Settings,
        check_credentials: CredentialCheck,
    ) -> None:
        self.scope = scope
        self.upstream = receive
        self.settings = settings
        self.check_credentials = check_credentials
        # The clock starts when the route first reads: the app's own time is not the client's.
        self.started = 0.0
        self.limit: int | None = None
        self.received = 0
        self.complete = False

    async def _admit(self) -> int:
        route = self.scope.get("route")
        limit = route_body_limit(route, self.settings)
        if isinstance(route, APIRoute):
            try:
                verified = await self.check_credentials(
                    route, HTTPConnection(self.scope), self.settings
                )
            except Problem as problem:
                raise _refuse(problem) from None
            if not verified:
                limit = min(limit, self.settings.body_max_bytes)
        declared = Headers(scope=self.scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        return limit

    def _too_large(self, limit: int) -> ProblemInBody:
        return _refuse(BodyTooLarge(f"请求体不能超过 {limit:,} 字节", max_bytes=limit))

    async def receive(self) -> Message:
        if self.complete:  # later reads wait for the disconnect: no deadline applies
            return await self.upstream()
        if self.limit is None:
            self.limit = await self._admit()
            self.started = anyio.current_time()
        settings = self.settings
        deadline = (
            self.started + settings.body_timeout_seconds + self.received / settings.body_min_rate
        )
        try:
            with anyio.fail_after(max(deadline - anyio.current_time(), 0)):
                message = await self.upstream()
        except TimeoutError:
            raise _refuse(
                BodyTimeout(
                    f"请求体须在 {settings.body_timeout_seconds:g} 秒内送达"
                    f"（每多收到 {settings.body_min_rate:,} 字节多等 1 秒）"
                )
            ) from None
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise self._too_large(self.limit)
        self.complete = not message.get("more_body", False)
        return message


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


class BodyGate:
    """The ASGI middleware described above; `settings` hold every limit."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, check_credentials: CredentialCheck
    ) -> None:
        self.app = app
        self.settings = settings
        self.check_credentials = check_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(scope, receive, self.settings, self.check_credentials)
        await self.app(scope, body.receive, send)


#: Text fields a form may carry (the sign-in form has five).
FORM_MAX_FIELDS = 20


class FormLimits(TypedDict, total=False):
    """FastAPI's `form_limits` (its own TypedDict is private)."""

    max_fields: int
    max_files: int
    max_part_size: int


def form_limits(settings: Settings) -> FormLimits:
    """The form parser's bounds for every route (a route may set tighter ones), checked as
    the parts arrive (`413 form_limit_exceeded`): the files a report may hold, a text field
    no larger than the default body limit."""
    return {
        "max_files": settings.report_max_photos,
        "max_fields": FORM_MAX_FIELDS,
        "max_part_size": settings.body_max_bytes,
    }


_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def document_body_problems(app: FastAPI) -> None:
    """List the gate's and the body parser's problems under every operation that takes a
    body, in the app's OpenAPI document."""

    def amend(document: dict[str, Any]) -> None:
        for operations in document["paths"].values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content")
                if content:
                    form = any(kind in content for kind in _FORM_TYPES)
                    parsing = (
                        (FormInvalid, FormLimitExceeded) if form else (BodyNotUtf8, BodyUnreadable)
                    )
                    add_problem_responses(
                        operation["responses"], (*parsing, BodyTimeout, BodyTooLarge)
                    )

    amend_openapi(app, amend)
