"""Idempotency keeps to data below the edge: the service gets its model or the stored
answer (`Replay`); only the route turns a replay into HTTP, sent exactly as first stored."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.core.idempotency import REPLAYED_HEADER, Replay, idempotent_answer, run_idempotent


class Made(BaseModel):
    n: int
    text: str


class Asked(BaseModel):
    text: str


def test_a_retry_gets_the_stored_answer_as_data_and_the_edge_sends_it_as_it_was(
    session: Session,
) -> None:
    calls: list[int] = []

    def create() -> Made:
        calls.append(1)
        return Made(n=len(calls), text="第一次")

    def run() -> Made | Replay:
        return run_idempotent(session, "user:1", "test.create", "key-0001", Asked(text="x"),
                              create, status_code=201)  # fmt: skip

    first = run()
    again = run()

    assert first == Made(n=1, text="第一次")
    assert again == Replay(status_code=201, body={"n": 1, "text": "第一次"})
    assert calls == [1]  # created once
    assert again.as_model(Made) == first
    assert idempotent_answer(first) is first  # a fresh model goes out through response_model
    sent = idempotent_answer(again)
    assert isinstance(sent, JSONResponse)
    assert (sent.status_code, sent.headers[REPLAYED_HEADER]) == (201, "true")
    assert sent.body == JSONResponse(first.model_dump(mode="json")).body
