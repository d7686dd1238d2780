"""The error contract, checked on every test that uses the `app` fixture: each problem the
app answers must be listed, with its status, under its operation in the committed OpenAPI
document (`openapi/openapi.json`; tests/test_api_conventions.py keeps it equal to the app's).

`ProblemRecorder` sits outermost in the test's app and notes (method, route template,
status, code) of every `application/problem+json` answer; at the end of the test
`undocumented` names those the document does not list, and the test errors. The whole suite
thus drives the error paths; a route that starts answering a new problem without saying so
fails the test that reached it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PROBLEM_MEDIA_TYPE, documented_problems

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


@dataclass(frozen=True)
class Answer:
    method: str
    path: str  # the route's template: /api/v1/cases/{number}
    status: int
    code: str


@dataclass
class ProblemRecorder:
    """Pure ASGI middleware noting the problems answered by the app's own routes (not the
    mounted Open311 application, which speaks its spec's errors; not unknown paths)."""

    app: ASGIApp
    answers: set[Answer] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body" and _is_problem(started):
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, record)
        # The router leaves the route it chose in the scope (none for an unknown path; for
        # a known path with another method, the route whose 405 is not its own answer).
        route = scope.get("route")
        if not isinstance(route, APIRoute) or not chunks or started["status"] == 405:
            return
        try:
            code = json.loads(b"".join(chunks))["code"]
        except (ValueError, KeyError, TypeError):
            code = "<not a problem body>"
        self.answers.add(Answer(scope["method"], route.path_format, started["status"], code))


def _is_problem(start: dict[str, Any]) -> bool:
    headers = dict(start.get("headers", ()))
    return headers.get(b"content-type", b"").decode().startswith(PROBLEM_MEDIA_TYPE)


@cache
def _document() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def undocumented(answers: set[Answer]) -> list[Answer]:
    """The answers whose (status, code) the committed document does not list for their
    operation. A 500 is never a contract: the fuzz test and the tests catch those."""
    paths = _document()["paths"]
    return sorted(
        (
            a
            for a in answers
            if a.status != 500
            and (a.status, a.code)
            not in documented_problems(paths.get(a.path, {}).get(a.method.lower(), {}))
        ),
        key=lambda a: (a.path, a.method, a.status, a.code),
    )
