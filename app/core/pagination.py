"""Cursor pagination: opaque cursors over a stable sort key, the one keyset pager
(`Keyset`), and the page models."""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, TypeVarTuple, cast

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, Select, String, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

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


T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Keyset:
    """A list's order over key columns that together are unique (an id; a code; a moment,
    then an id), all ascending or all descending, and its cursor: the last row's key, the
    bare value for one column, a list for several (moments as ISO text). A page is fetched
    with one row more than asked, to know whether another follows without counting.

    A cursor whose key is not of the columns' types (an id out of range, a naive or
    far-off moment, a code too long) answers `400 invalid_cursor`, like a mangled one."""

    def __init__(self, *columns: InstrumentedAttribute[Any], descending: bool = False) -> None:
        self.columns = columns
        self.descending = descending
        self._entity = cast(type, columns[0].class_)

    def decode(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The key after which the page starts, or None for the first page."""
        key = decode_cursor(cursor)
        if key is None:
            return None
        values = [key] if len(self.columns) == 1 else key
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise InvalidCursor("请使用上一页返回的 next_cursor")
        return tuple(_key_value(c, v) for c, v in zip(self.columns, values, strict=True))

    def encode(self, key: Sequence[Any]) -> str:
        values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
        return encode_cursor(values[0] if len(values) == 1 else values)

    def after(self, key: Sequence[Any]) -> ColumnElement[bool]:
        """Rows past `key` in this order: (a, b) > (x, y) written out, as both engines
        use the index for it."""
        past = operator.lt if self.descending else operator.gt
        pairs = list(zip(self.columns, key, strict=True))
        column, value = pairs[-1]
        condition: ColumnElement[bool] = past(column, value)
        for column, value in reversed(pairs[:-1]):
            condition = or_(past(column, value), and_(column == value, condition))
        return condition

    def _select(self, query: Select[*Ts], limit: int, cursor: str | None) -> Select[*Ts]:
        key = self.decode(cursor)
        if key is not None:
            query = query.where(self.after(key))
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return query.order_by(None).order_by(*order).limit(limit + 1)

    def _key_of(self, row: Any) -> tuple[Any, ...]:
        # A row of an entity and more (`select(Report, Case.number)`): the key is the
        # entity's; a row of columns (`select(Case.id, Case.reported_at, ...)`): the
        # row's, by the columns' names.
        if isinstance(row, Row):
            row = next((item for item in row if isinstance(item, self._entity)), row)
        return tuple(getattr(row, c.key) for c in self.columns)

    def _cut(self, rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
        page = list(rows[:limit])
        return page, self.encode(self._key_of(page[-1])) if len(rows) > limit else None

    def rows(
        self, session: Session, query: Select[*Ts], *, limit: int, cursor: str | None
    ) -> tuple[list[Row[*Ts]], str | None]:
        """One page of `query`'s rows in this order, and the next page's cursor (None on
        the last page). The query's own order, if any, is replaced."""
        return self._cut(session.execute(self._select(query, limit, cursor)).all(), limit)

    def scalars(
        self, session: Session, query: Select[T], *, limit: int, cursor: str | None
    ) -> tuple[list[T], str | None]:
        """`rows` for a query of one entity: the entities."""
        return self._cut(session.scalars(self._select(query, limit, cursor)).all(), limit)


def _key_value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):  # UTCDateTime: a DateTime inside
        sql_type = sql_type.impl_instance
    kind = sql_type.python_type
    if kind is int:
        return _database_id(value)
    if kind is datetime:
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("请使用上一页返回的 next_cursor") from exc
        if moment.tzinfo is None or not within_service_years(moment):
            raise InvalidCursor("请使用上一页返回的 next_cursor")
        return moment
    length = sql_type.length if isinstance(sql_type, String) else None
    if not isinstance(value, str) or not 0 < len(value) <= (length or 64):
        raise InvalidCursor("请使用上一页返回的 next_cursor")
    return value


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
