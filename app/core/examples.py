"""An example for every success answer in the OpenAPI document (示例), built from the schemas.

Client authors read an operation's example before its schema. Rather than a hand-written
dict per operation that drifts from the model, each example is assembled from the response
model's own schema: a field's declared `examples=[...]` first, then its default, enum or
format, then a plain value of its type. Better examples come from better field examples on
the models, at the source; tests/test_openapi_examples.py checks every JSON success answer
has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.openapi import amend_openapi

_REF = "#/components/schemas/"
#: Deep enough for every model of the API; a self-referencing schema stops here.
_MAX_DEPTH = 8
_FORMATS: dict[str, Any] = {
    "date-time": "2026-11-23T10:15:00+08:00",
    "date": "2026-11-23",
    "time": "10:15:00",
    "duration": "PT2H",
    "email": "user@example.com",
    "uri": "https://roadchief.example/api/v1/",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "ipv4": "192.0.2.1",
}
#: Plain-typed fields that recur in many models, by name: a place in the demo district
#: (惠济区, Zhengzhou) and a case number rather than a bare "示例".
_BY_NAME: dict[str, Any] = {
    "coordinates": [113.6185, 34.8672],  # a GeoJSON point
    "lon": 113.6185,
    "lat": 34.8672,
    "case_number": "20261123000042",
    "number": "20261123000042",
    "street_code": "410199001",
    "community_code": "410199001001",
    "segment_code": "RS-0001",
    "category_code": "roads.pothole",
    "unit_code": "urban-management",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}


def _named(name: str, schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    if name in _BY_NAME and not {"$ref", "enum", "examples"} & schema.keys():
        return _BY_NAME[name]
    return example_of(schema, schemas, depth)


_NOTHING = object()


def example_of(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A value that fits `schema` (`schemas`: the document's components, for `$ref`s): what
    the schema declares, else what its composition gives, else a plain value of its type."""
    declared = _declared(schema, schemas, depth)
    if declared is not _NOTHING:
        return declared
    if depth > _MAX_DEPTH:
        return None
    composed = _composed(schema, schemas, depth)
    if composed is not _NOTHING:
        return composed
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "properties" in schema:
        kind = "object"
    make = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    return make(schema, schemas, depth) if make else None


def _declared(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    """The schema's own example, const, default or first enum value (through a `$ref`)."""
    for key in ("const", "example"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        return example_of(schemas[ref[len(_REF) :]], schemas, depth)
    if schema.get("default") is not None:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    return _NOTHING


def _composed(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    """`anyOf`/`oneOf`: the richer branch (a value rather than null); `allOf`: the parts
    merged."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return example_of(branches[0], schemas, depth)
    if "allOf" not in schema:
        return _NOTHING
    merged: dict[str, Any] = {}
    for part in schema["allOf"]:
        value = example_of(part, schemas, depth)
        if not isinstance(value, dict):
            return value
        merged |= value
    return merged


def _object(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    value = {
        name: _named(name, prop, schemas, depth + 1)
        for name, prop in schema.get("properties", {}).items()
    }
    extra = schema.get("additionalProperties")
    if not value and isinstance(extra, dict):
        value = {"key": example_of(extra, schemas, depth + 1)}
    return value


def _array(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    items = schema.get("prefixItems")
    if items:
        return [example_of(item, schemas, depth + 1) for item in items]
    if schema.get("maxItems") == 0:
        return []
    return [example_of(schema.get("items", {}), schemas, depth + 1)]


def _string(schema: dict[str, Any], _schemas: dict[str, Any], _depth: int) -> Any:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    text = "示例"
    return text * max(1, -(-int(schema.get("minLength", 0)) // len(text)))


def _integer(schema: dict[str, Any], _schemas: dict[str, Any], _depth: int) -> Any:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    return min(max(int(low), 1), int(schema.get("maximum", 1 << 31)))


def _number(schema: dict[str, Any], _schemas: dict[str, Any], _depth: int) -> Any:
    low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
    high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 2)))
    return round((low + high) / 2, 2)


#: A plain value of each JSON type.
_BY_TYPE: dict[str, Callable[[dict[str, Any], dict[str, Any], int], Any]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda *_: True,
}


def document_examples(app: FastAPI) -> None:
    """Give each JSON success answer of the app's OpenAPI document an example, unless its
    route declares one of its own."""

    def amend(document: dict[str, Any]) -> None:
        schemas = document.get("components", {}).get("schemas", {})
        for operations in document["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if not str(status).startswith("2"):
                        continue
                    for media_type, media in response.get("content", {}).items():
                        if "json" not in media_type or "schema" not in media:
                            continue
                        if "example" in media or "examples" in media:
                            continue
                        example = example_of(media["schema"], schemas)
                        if example not in (None, {}, []):  # an untyped object says nothing
                            media["example"] = example

    amend_openapi(app, amend)
