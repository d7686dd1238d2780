"""Benchmark: the pieces a request is made of, each alone, as CPU time in this process.

    ./scripts/bench pieces [--n 3000]

Issue 18, item 3: what bounds the overhead ratios (`bench overhead`). Each figure is the
best of five loops of `--n` calls, in CPU milliseconds per call:

1. `/healthz` of the floor app and of the service, called straight through ASGI (no
   sockets, no uvicorn): what the service's middleware and routing add;
2. the request log line alone (structlog through the stdlib handler, to /dev/null);
3. a session that runs one, then two trivial statements (`SELECT 1`), on SpatiaLite and on
   PostGIS: what any request that reads the database pays before its own query's work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text

from app.core.database import Database
from app.core.logging import configure_logging
from app.main import create_app
from app.settings import Settings
from bench.floor_app import app as floor_app
from bench.intake import SECRET


def best_ms(call: Callable[[], object], n: int, rounds: int = 5) -> float:
    for _ in range(min(n, 200)):
        call()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - started) / n * 1000)
    return best


def asgi_get(app: Any, path: str) -> Callable[[], object]:
    """One GET through the ASGI app, on a loop of its own."""
    loop = asyncio.new_event_loop()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    return lambda: loop.run_until_complete(app(dict(scope, state={}), receive, send))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'pieces.sqlite3'}",
                            secret_key=SECRET)  # fmt: skip
        configure_logging(settings)
        handler = logging.getLogger().handlers[0]
        handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115
        service = create_app(settings)
        print(f"pieces, CPU ms per call (best of five loops of {args.n})")
        floor = best_ms(asgi_get(floor_app, "/floor-async"), args.n)
        print(f"  /healthz through ASGI, floor app        {floor:.4f}")
        healthz = best_ms(asgi_get(service, "/healthz"), args.n)
        print(f"  /healthz through ASGI, service          {healthz:.4f}")
        log = structlog.get_logger("roadchief.request")

        def line() -> None:
            log.info("request", method="GET", path="/healthz", status=200, duration_ms=0.1)

        print(f"  the request log line                    {best_ms(line, args.n):.4f}")
        urls = {"SpatiaLite": settings.database_url}
        if os.environ.get("ROADCHIEF_BENCH_POSTGRES_URL"):  # the server's own database
            urls["PostGIS"] = os.environ["ROADCHIEF_BENCH_POSTGRES_URL"]
        for name, url in urls.items():
            database = Database.from_settings(settings.model_copy(update={"database_url": url}))

            def reads(k: int, database: Database = database) -> Callable[[], object]:
                def run() -> None:
                    with database.sessions() as session:
                        for _ in range(k):
                            session.execute(text("SELECT 1")).all()

                return run

            one, two = best_ms(reads(1), args.n // 3), best_ms(reads(2), args.n // 3)
            print(f"  {name}: a session with 1 statement {one:.3f}, with 2 statements {two:.3f}")
            database.dispose()


if __name__ == "__main__":
    main()
