"""The error contract in the OpenAPI document (错误契约): the problems every route of a kind
may answer, added where FastAPI generates the document.

A route declares its own problems with `problem_responses(...)`; the ones that come with a
kind of route are declared here once: `validation_failed` (instead of FastAPI's own 422
shape) and `text_with_nul` on every operation that takes input, `invalid_cursor` on every
list that pages with a `cursor`, and the sign-in problems the caller passes in on every
operation that declares a security scheme (every route that asks who is calling).
tests/support/contract.py records every problem the tests get answered and fails a test whose route
answered one its operation does not document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.core.database import TextWithNul
from app.core.errors import Problem, ValidationFailed, add_problem_responses
from app.core.openapi import amend_openapi
from app.core.pagination import InvalidCursor

#: The 200 of a route that answers its object's version as an ETag (for `If-Match`).
ETAG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "ETag": {
                "description": 'The version of the object, `"3"`: send it back as `If-Match`.',
                "schema": {"type": "string"},
            }
        }
    }
}

#: FastAPI's schemas for its own 422, unused once every 422 is a problem.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """The operation's id: its function's name (`get_user`, not FastAPI's
    `get_user_api_v1_admin_users__user_id__get`), what a generated client calls it;
    tests/test_api_conventions.py checks they are unique."""
    return route.name


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


def _pages(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "query" and p.get("name") == "cursor"
        for p in operation.get("parameters", ())
    )


def _name_schemas_for_generators(document: dict[str, Any]) -> None:
    """Generic models' schemas under their titles (`UserPage`, which their
    `model_parametrized_name` gives) instead of Pydantic's `Page_UserOut_`, forms as
    `TokenForm`, files as `format: binary`."""
    schemas = document.get("components", {}).get("schemas", {})
    renames = {
        name: "".join(word.capitalize() for word in name.split("_")[1:]) + "Form"
        for name in schemas
        if name.startswith("Body_")  # FastAPI's name for a form: Body_token -> TokenForm
    }
    renames |= {
        name: schema["title"]
        for name, schema in schemas.items()
        if str(schema.get("title", name)).isidentifier()
        and schema.get("title", name) != name
        and schema["title"] not in schemas
    }
    prefix = "#/components/schemas/"

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "string" and "contentMediaType" in node:
                # A file: 3.0-era generators know it by `format: binary` only.
                node.setdefault("format", "binary")
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in renames:
                node["$ref"] = prefix + renames[ref[len(prefix) :]]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)
        return node

    rewrite(document)
    for old, new in renames.items():
        schemas[old]["title"] = new
    document["components"]["schemas"] = dict(
        sorted((renames.get(name, name), schema) for name, schema in schemas.items())
    )


def document_problems(app: FastAPI, secured: Sequence[type[Problem]] = ()) -> None:
    """Add the problems of each kind of route to the app's OpenAPI document (`secured`: those
    of every operation that declares a security scheme, i.e. asks who is calling); name
    generic models' schemas for client generators."""

    def amend(document: dict[str, Any]) -> None:
        for operations in document["paths"].values():
            for operation in operations.values():
                extra: list[type[Problem]] = []
                if operation.get("security"):
                    extra.extend(secured)
                if _takes_input(operation):
                    extra.extend((ValidationFailed, TextWithNul))
                if _pages(operation):
                    extra.append(InvalidCursor)
                add_problem_responses(operation["responses"], extra)
        schemas = document.get("components", {}).get("schemas", {})
        for name in _FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)
        _name_schemas_for_generators(document)

    amend_openapi(app, amend)
