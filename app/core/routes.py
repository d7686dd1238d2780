"""The API's route class: a sync endpoint crosses to the thread pool once per request.

FastAPI runs a sync (`def`) endpoint in the thread pool and then, when the route has a
response model, sends the answer's validation to the pool again (`serialize_response` with
`is_coroutine=False`): two hand-offs between the event loop and a worker thread for every
request, which a `GET /me` profile showed as a third of the framework's time. A
`PooledRoute` runs the endpoint in the pool itself, from an `async` wrapper, so FastAPI
validates the answer in the loop, where it serialises it anyway: one hand-off. The
endpoint, its database work included, still runs off the loop.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def off_the_loop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A plain sync function `endpoint` as an `async` callable that runs it in the thread
    pool; anything else (a coroutine or generator function, which FastAPI streams, or a
    callable object) as it is. FastAPI reads the parameters and their annotations through
    `__wrapped__`, so dependencies, the body and the OpenAPI entry are the endpoint's."""
    if not inspect.isfunction(endpoint) or (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def in_the_pool(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return in_the_pool


class PooledRoute(APIRoute):
    """An `APIRoute` whose sync endpoint is run by `off_the_loop`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, off_the_loop(endpoint), **kwargs)


def api_router(**kwargs: Any) -> APIRouter:
    """An `APIRouter` of `PooledRoute`s: every router of the JSON API is made here."""
    return APIRouter(route_class=PooledRoute, **kwargs)
