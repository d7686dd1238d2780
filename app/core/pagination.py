"""Cursor pagination: opaque cursors over a stable sort key, and the page models."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from app.core.errors import Problem

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

PageSize = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page (at most {MAX_PAGE_SIZE})."),
]
Cursor = Annotated[
    str | None, Query(description="Opaque cursor from the previous page's `next_cursor`.")
]


class InvalidCursor(Problem):
    code = "invalid_cursor"
    status = 400
    title = "分页游标无效"


def encode_cursor(key: Any) -> str:
    raw = json.dumps({"k": key}, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The sort key after which the page starts, or None for the first page."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded))["k"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("请使用上一页返回的 next_cursor") from exc


def decode_id_cursor(cursor: str | None) -> int | None:
    """A cursor whose key is an integer id (pages ordered by id)."""
    key = decode_cursor(cursor)
    if key is not None and (not isinstance(key, int) or isinstance(key, bool)):
        raise InvalidCursor("请使用上一页返回的 next_cursor")
    return key


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


F = TypeVar("F")


class FeaturePage(BaseModel, Generic[F]):
    """A GeoJSON FeatureCollection page, with OGC API Features paging members."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[F]
    numberReturned: int = Field(description="Features on this page.")  # noqa: N815 - OGC name
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    links: list[Link] = Field(default_factory=list)


class Page(BaseModel, Generic[F]):
    """A JSON page of items."""

    items: list[F]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
