"""A sync endpoint of the API crosses to the thread pool once per request: it still runs
off the event loop, and its answer is still validated against the response model."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core.routes import PooledRoute, api_router, off_the_loop


class Answer(BaseModel):
    name: str


def test_a_sync_endpoint_runs_in_the_pool_and_its_answer_is_validated() -> None:
    router = api_router(prefix="/t")
    seen: dict[str, object] = {}

    @router.get("/sync", response_model=Answer)
    def sync_endpoint(name: str) -> dict[str, str]:
        seen["thread"] = threading.current_thread()
        return {"name": name, "secret": "not in the model"}

    @router.get("/bad", response_model=Answer)
    def bad_endpoint() -> dict[str, int]:
        return {"name_missing": 1}

    app = FastAPI()
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/t/sync", params={"name": "路长"})
        assert (answer.status_code, answer.json()) == (200, {"name": "路长"})
        assert seen["thread"] is not threading.main_thread()
        assert client.get("/t/sync").status_code == 422  # the query parameter is still read
        assert client.get("/t/bad").status_code == 500  # ResponseValidationError
    operation = app.openapi()["paths"]["/t/sync"]["get"]
    assert operation["operationId"].startswith("sync_endpoint")
    assert [p["name"] for p in operation["parameters"]] == ["name"]


def test_every_route_of_the_api_is_pooled(app: FastAPI) -> None:
    routes = [c for c in iter_route_contexts(app.routes) if c.path.startswith("/api/")]
    api = [c for c in routes if isinstance(c.original_route, APIRoute)]
    assert len(api) > 100, "the API's routes are all seen"
    assert [c.path for c in api if not isinstance(c.original_route, PooledRoute)] == []


def test_only_plain_sync_functions_are_wrapped() -> None:
    def plain() -> None: ...

    async def coroutine() -> None: ...

    def generator() -> Iterator[int]:
        yield 1  # FastAPI streams a generator endpoint: it must see the generator

    class Endpoint:
        def __call__(self) -> None: ...

    wrapped = off_the_loop(plain)
    assert wrapped is not plain
    assert wrapped.__wrapped__ is plain
    for endpoint in (coroutine, generator, Endpoint()):
        assert off_the_loop(endpoint) is endpoint
