"""NUL characters (U+0000) in a request's path or query are refused at the edge.

PostgreSQL text cannot hold one: a code or filter carrying `%00` failed there as a 500
while SQLite answered. Both engines now get the same clear 400 before any query.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Problem, problem_response


class NulCharacter(Problem):
    code = "nul_character"
    status = 400
    title = "请求中含有空字符"


class RefuseNulCharacters:
    """Pure ASGI middleware: looks at the path and query string only, never the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope["query_string"])
        ):
            problem = NulCharacter("地址和查询参数中不能含有空字符（%00）")
            await problem_response(problem, Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)
