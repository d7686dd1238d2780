"""One answer, two formats: GeoReport v2's XML and its JSON twin.

The spec defines XML and derives JSON from it: a root holding repeated children becomes
an array (`<services><service>…` → `[{…}]`), a single root becomes an object, a wrapper of
repeated elements (`<attributes><attribute>…`) becomes an array under its name. Every field
is present: an empty element in XML, `null` in JSON. The XML is written by the standard
library's ElementTree (escaping and the UTF-8 declaration done by a maintained writer, no
string building); nothing here parses XML, so no hardened parser is needed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi.responses import Response


class Format(StrEnum):
    XML = "xml"
    JSON = "json"


MEDIA_TYPES = {
    Format.XML: "text/xml; charset=utf-8",
    Format.JSON: "application/json; charset=utf-8",
}

#: A list field's element name for each of its items (`attributes` → `attribute`).
ITEM_TAGS = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


@dataclass(frozen=True, slots=True)
class Document:
    """An answer: its XML root, and either a list of items (each an `item` element; a JSON
    array) or one mapping (the root's children; a JSON object)."""

    root: str
    body: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    item: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _fill(element: ET.Element, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        child = ET.SubElement(element, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif isinstance(value, list | tuple):
            for item in value:
                grandchild = ET.SubElement(child, ITEM_TAGS[name])
                if isinstance(item, Mapping):
                    _fill(grandchild, item)
                else:
                    grandchild.text = _text(item)
        else:
            child.text = _text(value)


def to_xml(document: Document) -> bytes:
    root = ET.Element(document.root)
    if document.item is None:
        assert isinstance(document.body, Mapping)
        _fill(root, document.body)
    else:
        for entry in document.body:
            assert isinstance(entry, Mapping)
            _fill(ET.SubElement(root, document.item), entry)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(document: Document) -> bytes:
    body = _plain(document.body)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def respond(
    document: Document, fmt: Format, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    content = to_xml(document) if fmt is Format.XML else to_json(document)
    return Response(content, status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)
