"""Cursor pagination: opaque cursors over a stable sort key, and the page models."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import Problem
from app.core.inputs import MAX_DATABASE_ID, within_service_years

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

_PAGE_SIZE_DOC = f"Items per page (at most {MAX_PAGE_SIZE})."
_CURSOR_DOC = "Opaque cursor from the previous page's `next_cursor`."
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=_PAGE_SIZE_DOC)]
Cursor = Annotated[str | None, Query(description=_CURSOR_DOC)]


class PageQuery(BaseModel):
    """A list's query parameters as one model (`Annotated[Model, Query()]`): paging, plus a
    subclass's filters. Unknown parameters are refused (422), so a misspelt filter never
    returns everything."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description=_PAGE_SIZE_DOC
    )
    cursor: str | None = Field(default=None, description=_CURSOR_DOC)


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


def _database_id(key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= MAX_DATABASE_ID:
        raise InvalidCursor("请使用上一页返回的 next_cursor")
    return key


def decode_id_cursor(cursor: str | None) -> int | None:
    """A cursor whose key is a row's id (pages ordered by id)."""
    key = decode_cursor(cursor)
    return None if key is None else _database_id(key)


def decode_text_cursor(cursor: str | None, max_length: int = 64) -> str | None:
    """A cursor whose key is a unique text (pages ordered by a code)."""
    key = decode_cursor(cursor)
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= max_length):
        raise InvalidCursor("请使用上一页返回的 next_cursor")
    return key


def decode_moment_id_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """A cursor whose key is `[moment, id]` (pages ordered by a time, then id): the moment
    aware and within the service's years, as `encode_cursor([t.isoformat(), id])` makes it."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    try:
        text, row_id = key
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("请使用上一页返回的 next_cursor") from exc
    if moment.tzinfo is None or not within_service_years(moment):
        raise InvalidCursor("请使用上一页返回的 next_cursor")
    return moment, _database_id(row_id)


def plain_name(model: type[Any]) -> str:
    """A model's name for a generic's parametrized name: RoadSegmentOut -> RoadSegment."""
    name = model.__name__
    for suffix in ("Out", "Feature"):
        name = name.removesuffix(suffix) or name
    return name


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None


F = TypeVar("F")


class FeaturePage(BaseModel, Generic[F]):
    """A GeoJSON FeatureCollection page, with OGC API Features paging members."""

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        # A name client generators can use: RoadSegmentFeaturePage, not
        # FeaturePage_Feature_RoadSegmentOut__.
        return f"{plain_name(params[0])}FeaturePage"

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[F]
    numberReturned: int = Field(description="Features on this page.")  # noqa: N815 - OGC name
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    links: list[Link] = Field(default_factory=list)


class Page(BaseModel, Generic[F]):
    """A JSON page of items."""

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        # A name client generators can use: UserPage, not Page_UserOut_.
        return f"{plain_name(params[0])}Page"

    items: list[F]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
