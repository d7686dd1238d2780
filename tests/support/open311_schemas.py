"""JSON Schemas of GeoReport v2's JSON answers, written here from the specification's field
lists (wiki.open311.org, GeoReport v2: "GET Service List", "GET Service Definition",
"GET Service Requests", "POST Service Request").

They are the fallback of `conftest.georeport_schemas` when the open311/schema-validation
repository's own schemas are not on the machine (that repository carries no licence, so
its files are not committed here): the same questions asked from our own reading of the
specification, with date-times checked as RFC 3339 (ISO 8601 with an offset).
"""

from __future__ import annotations

from typing import Any

_TEXT = {"type": ["string", "null"]}
_MOMENT = {"type": ["string", "null"], "format": "date-time"}
_NUMBER = {"type": ["number", "null"]}

SERVICE: dict[str, Any] = {
    "type": "object",
    "required": [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ],
    "properties": {
        "service_code": {"type": "string", "minLength": 1},
        "service_name": {"type": "string", "minLength": 1},
        "description": _TEXT,
        "metadata": {"type": "boolean"},
        "type": {"enum": ["realtime", "batch", "blackbox"]},
        "keywords": _TEXT,
        "group": _TEXT,
    },
}

ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "required": ["variable", "code", "datatype", "required", "order", "description"],
    "properties": {
        "variable": {"type": "boolean"},
        "code": {"type": "string", "minLength": 1},
        "datatype": {
            "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
        },
        "required": {"type": "boolean"},
        "datatype_description": _TEXT,
        "order": {"type": "integer", "minimum": 0},
        "description": {"type": "string"},
        "values": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "name"],
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}},
            },
        },
    },
}

SERVICE_DEFINITION: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string", "minLength": 1},
        "attributes": {"type": "array", "items": ATTRIBUTE},
    },
}

REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string", "minLength": 1},
        "status": {"enum": ["open", "closed"]},
        "status_notes": _TEXT,
        "service_name": _TEXT,
        "service_code": {"type": "string", "minLength": 1},
        "description": _TEXT,
        "agency_responsible": _TEXT,
        "service_notice": _TEXT,
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": _MOMENT,
        "expected_datetime": _MOMENT,
        "address": _TEXT,
        "address_id": _TEXT,
        "zipcode": _TEXT,
        "lat": _NUMBER,
        "long": _NUMBER,
        "media_url": {"type": ["string", "null"], "format": "uri"},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "service": SERVICE,
    "services": {"type": "array", "items": SERVICE},
    "service-definition": SERVICE_DEFINITION,
    "request": REQUEST,
    "requests": {"type": "array", "items": REQUEST},
}
