"""Open311's own error answer (`<errors><error><code/><description/></error></errors>`).

On `/open311` routes only, every refusal takes this shape, in the format the URL asked
for, with the statuses the spec assigns (400, 403, 404; 429 for throttling). The domain's
problems (`app.core.errors.Problem`) raised by the shared intake are translated here, so
a rule is still decided once, where it lives.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from app.core.errors import Problem
from app.open311.render import Document, Format, respond


@dataclass
class Open311Error(Exception):
    """A refusal in the spec's terms: `status` (400, 403, 404 or 429) and a description."""

    status: int
    description: str
    headers: dict[str, str] | None = None


def format_of(request: Request) -> Format:
    """The answer's format: the path's extension (`.json`), XML otherwise (the spec's)."""
    return Format.JSON if request.url.path.endswith(".json") else Format.XML


def error_response(request: Request, errors: list[Open311Error]) -> Response:
    document = Document(
        root="errors",
        item="error",
        body=[{"code": e.status, "description": e.description} for e in errors],
    )
    return respond(document, format_of(request), errors[0].status, errors[0].headers)


def from_problem(problem: Problem) -> Open311Error:
    """A domain refusal in Open311's statuses: not found stays 404, refused access 403,
    throttling 429; every other refusal of the input is the spec's 400."""
    if problem.status == 404:
        status = 404
    elif problem.status in (401, 403):
        status = 403
    elif problem.status == 429:
        status = 429
    else:
        status = 400
    detail = problem.detail or problem.title
    errors = problem.errors or []
    if errors:
        detail += "：" + "；".join(f"{'.'.join(map(str, e.loc))} {e.message}" for e in errors)
    return Open311Error(status, f"{problem.code}: {detail}", problem.headers)
