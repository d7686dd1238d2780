"""Idempotent creates: a phone that retries never makes a second whistle, report or case.

The client sends an `Idempotency-Key` header (IETF draft-ietf-httpapi-idempotency-key-
header) with every create. The first request's answer is stored in the same transaction
as what it created; a retry with the same key and the same body gets that answer again
(with `Idempotent-Replayed: true`), a retry with a different body gets 422. Keys belong
to one caller and one operation, so two phones can never collide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeAlias, TypeVar

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import JSON, Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.database import Base, UTCDateTime, utcnow
from app.core.errors import Problem

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A fresh random key per create (a UUID); resend it on every retry.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored first answer to a keyed create, to be sent again exactly as it was.

    Services hand it on untouched; only the edge (`idempotent_answer`) turns it into HTTP.
    """

    status_code: int
    body: dict[str, Any]

    def as_model(self, model: type[M]) -> M:
        """The stored answer as data, for callers that answer in another shape (batch, Open311)."""
        return model.model_validate(self.body)


# What a keyed create gives back: the model it just made, or the first request's answer.
Idempotent: TypeAlias = M | Replay


def idempotent_answer(outcome: M | Replay) -> M | JSONResponse:
    """At the edge: a fresh model goes out through the route's `response_model`; a replay is
    the stored body with its stored status and `Idempotent-Replayed: true`, byte for byte."""
    if isinstance(outcome, Replay):
        return JSONResponse(
            outcome.body, status_code=outcome.status_code, headers={REPLAYED_HEADER: "true"}
        )
    return outcome


class IdempotencyKeyReused(Problem):
    code = "idempotency_key_reused"
    status = 422
    title = "同一个幂等键已用于内容不同的请求"


class IdempotencyRecord(Base):
    """The stored answer to one keyed create."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("caller", "operation", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def request_fingerprint(body: BaseModel | dict[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON (key order and spacing do not matter)."""
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored(
    session: Session, caller: str, operation: str, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    row = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.caller == caller,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
    )
    if row is not None and row.request_sha256 != fingerprint:
        raise IdempotencyKeyReused(
            "该 Idempotency-Key 已用于另一条内容不同的请求：新的请求请使用新的键",
            idempotency_key=key,
        )
    return row


def _replay(row: IdempotencyRecord) -> Replay:
    return Replay(status_code=row.status_code, body=row.response)


def _created(session: Session, create: Callable[[], M]) -> M:
    try:
        return create()
    except BaseException:
        session.rollback()
        raise


def run_idempotent(
    session: Session,
    caller: str,
    operation: str,
    key: str | None,
    request: BaseModel,
    create: Callable[[], M],
    *,
    status_code: int = 201,
) -> M | Replay:
    """Run `create` once per `caller` and key; it adds to the session, we commit.

    `caller` is who asks (`Principal.ref`), `operation` what (e.g. "whistles.create").

    Returns the created model, or the stored answer of the first request with this key
    (a `Replay`, which the route turns into the response with `idempotent_answer`).
    If two requests with one key race, the loser's transaction is rolled back and it
    answers with the winner's result. If `create` refuses (raises), everything it added is
    rolled back: a refused request leaves nothing half-written.
    """
    if key is None:
        result = _created(session, create)
        session.commit()
        return result
    fingerprint = request_fingerprint(request)
    row = _stored(session, caller, operation, key, fingerprint)
    if row is not None:
        return _replay(row)
    result = _created(session, create)
    session.add(
        IdempotencyRecord(
            caller=caller,
            operation=operation,
            key=key,
            request_sha256=fingerprint,
            status_code=status_code,
            response=result.model_dump(mode="json"),
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        row = _stored(session, caller, operation, key, fingerprint)
        if row is None:
            raise
        return _replay(row)
    return result
