"""A real server on loopback, for the stories that need concurrent clients or the
service's own background jobs: uvicorn in a thread, on a database of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from app.demo.users import DEMO_PASSWORD


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` (its lifespan included) on a free loopback port; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def signed_in(base_url: str, username: str) -> dict[str, str]:
    """Headers of `username` signed in with the demo password, as the phone does."""
    answer = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    token: Any = answer.json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
