"""Every JSON success answer in the OpenAPI document carries an example built from its schema."""

from __future__ import annotations

import json
from typing import Any

from app.core.examples import example_of
from tests.support.contract import OPENAPI

METHODS = ("get", "post", "put", "patch", "delete")


def _document() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text())


def test_every_json_success_answer_has_an_example() -> None:
    missing, counted = [], 0
    for path, operations in _document()["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    if status.startswith("2") and media_type == "application/json":
                        counted += 1
                        if "example" not in media and "examples" not in media:
                            missing.append(f"{method.upper()} {path} {status}")
    assert counted > 100
    assert missing == []


def test_examples_follow_the_schema() -> None:
    schemas = {
        "Unit": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "examples": ["urban-management"]},
                "kind": {"enum": ["street", "department"]},
                "lon": {"type": "number"},
                "parent": {"anyOf": [{"$ref": "#/components/schemas/Unit"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 3}},
                "level": {"type": "integer", "minimum": 2, "maximum": 5},
                "at": {"type": "string", "format": "date-time"},
            },
        }
    }
    example = example_of({"$ref": "#/components/schemas/Unit"}, schemas)
    assert example["code"] == "urban-management"  # the field's own example first
    assert example["kind"] == "street"
    assert example["lon"] == 113.6185  # a place in the demo district, by name
    assert example["parent"]["code"] == "urban-management"  # null is the poorer branch
    assert len(example["tags"]) == 1
    assert len(example["tags"][0]) >= 3
    assert example["level"] == 2
    assert example["at"].endswith("+08:00")
    # A schema that contains itself ends instead of recursing forever.
    assert isinstance(json.dumps(example), str)
