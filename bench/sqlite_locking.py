"""Benchmark: SQLite under concurrent readers and writers, with read-only requests'
transactions deferred (as built) or, for comparison, immediate like the writers'.

    ./scripts/bench sqlite_locking [--seconds 10] [--readers 4] [--writers 4]

Writing transactions BEGIN IMMEDIATE: they queue for the write lock instead of failing
when another writer committed first. The question is whether reads should too (one rule
for every transaction, simpler) or begin deferred (WAL lets them run beside a writer).
On the scale-1 demo city in a fresh SQLite file, one server process (uvicorn in a thread,
as the tests run it), for each mode in turn: `--readers` clients loop over a heavy read
(`GET /api/v1/territory/road-segments?limit=1000`, every segment as GeoJSON) and
`--writers` clients loop over JSON reports, for `--seconds`. Printed per mode: requests
per second, latency, and the count of 5xx answers (or dropped connections); then how
long one report waits while a long read (seconds of SQLite work) has its transaction open.
Last, writers only: 10 clients sending 40 reports each, back to back.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from geoalchemy2.shape import to_shape
from sqlalchemy import select, text

import app.core.deps
from app.core.database import Database, utcnow
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from app.territory.models import RoadSegment
from bench.common import stats
from bench.intake import fresh_database, prepare

HEAVY_READ = "/api/v1/territory/road-segments?limit=1000"


@contextmanager
def server(settings: Settings, database: Database) -> Iterator[str]:
    config = uvicorn.Config(create_app(settings, database), host="127.0.0.1", port=0,
                            log_level="warning")  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}"
    finally:
        running.should_exit = True
        thread.join()


def load(base: str, points: list[tuple[float, float]], args: argparse.Namespace) -> None:
    token = httpx.post(f"{base}/api/v1/auth/token", data={
        "grant_type": "password", "username": "demo-chief-3", "password": DEMO_PASSWORD,
    }).json()["access_token"]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    until = time.monotonic() + args.seconds
    samples: dict[str, list[float]] = {"read": [], "write": []}
    errors = {"read": 0, "write": 0}

    def loop(kind: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < until:
                started = time.perf_counter()
                lon, lat = rng.choice(points)
                report = {"category_code": "civility.public_behaviour", "description": "乱扔垃圾",
                          "lon": lon, "lat": lat, "device_time": utcnow().isoformat()}  # fmt: skip
                try:
                    if kind == "read":
                        answer = client.get(HEAVY_READ)
                    else:
                        answer = client.post("/api/v1/reports", json=report)
                    failed = answer.status_code >= 500
                except httpx.HTTPError:  # the server dropped the connection
                    failed = True
                samples[kind].append(time.perf_counter() - started)
                errors[kind] += failed

    threads = [threading.Thread(target=loop, args=("read", i)) for i in range(args.readers)]
    threads += [threading.Thread(target=loop, args=("write", i)) for i in range(args.writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for kind in ("read", "write"):
        done = samples[kind]
        print(f"  {kind:5}  {len(done) / args.seconds:6.1f}/s  {stats(done).line()}  "
              f"max {max(done) * 1000:.0f} ms  5xx or dropped: {errors[kind]}")  # fmt: skip


#: A read that keeps SQLite busy for seconds, as a month's live KPIs on a big city do
#: (bench/README.md, `assessment`).
LONG_READ = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    "SELECT count(*) FROM c"
)


def behind_a_long_read(
    base: str, database: Database, points: list[tuple[float, float]], immediate: bool
) -> None:
    """How long one report waits while a long read's transaction is open."""
    token = httpx.post(f"{base}/api/v1/auth/token", data={
        "grant_type": "password", "username": "demo-chief-2", "password": DEMO_PASSWORD,
    }).json()["access_token"]  # fmt: skip
    reading = threading.Event()
    read_s: list[float] = []

    def read() -> None:
        with (database.sessions if immediate else database.read_sessions)() as session:
            started = time.perf_counter()
            session.execute(text("SELECT 1"))
            reading.set()
            session.execute(LONG_READ, {"n": 3_000_000})
            read_s.append(time.perf_counter() - started)

    reader = threading.Thread(target=read)
    reader.start()
    reading.wait()
    lon, lat = points[0]
    started = time.perf_counter()
    answer = httpx.post(f"{base}/api/v1/reports", headers={"Authorization": f"Bearer {token}"},
                        json={"category_code": "civility.public_behaviour", "description": "坑",
                              "lon": lon, "lat": lat, "device_time": utcnow().isoformat()},
                        timeout=60)  # fmt: skip
    wrote = time.perf_counter() - started
    reader.join()
    print(f"  one report during a {read_s[0] * 1000:.0f} ms read: {wrote * 1000:.0f} ms "
          f"(HTTP {answer.status_code})")  # fmt: skip


def writers_only(base: str, points: list[tuple[float, float]], clients: int, each: int) -> None:
    """`clients` phones each sending `each` JSON reports back to back: how long the
    unluckiest waits (SQLite's busy handler alone lets newcomers starve older writers)."""
    token = httpx.post(f"{base}/api/v1/auth/token", data={
        "grant_type": "password", "username": "demo-chief-1", "password": DEMO_PASSWORD,
    }).json()["access_token"]  # fmt: skip
    samples: list[float] = []
    failed = 0

    def phone(n: int) -> None:
        nonlocal failed
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:  # fmt: skip
            for k in range(each):
                lon, lat = points[(n * each + k) % len(points)]
                started = time.perf_counter()
                answer = client.post("/api/v1/reports", json={
                    "category_code": "civility.public_behaviour", "description": "乱扔垃圾",
                    "lon": lon, "lat": lat, "device_time": utcnow().isoformat()})  # fmt: skip
                samples.append(time.perf_counter() - started)
                failed += answer.status_code >= 500

    started = time.perf_counter()
    threads = [threading.Thread(target=phone, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    print(f"writers only, {clients} clients x {each} reports: {len(samples) / took:.1f}/s  "
          f"{stats(samples).line()}  max {max(samples) * 1000:.0f} ms  5xx: {failed}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    settings = prepare(fresh_database("sqlite", "locking"), Path(tempfile.mkdtemp()))
    settings = settings.model_copy(update={"log_level": "WARNING", "log_format": "console"})
    database = Database.from_settings(settings)
    with database.sessions() as session:
        points = []
        for geom in session.scalars(select(RoadSegment.geom)):
            middle = to_shape(geom).interpolate(0.5, normalized=True)
            points.append((middle.x, middle.y))
    modes = {"reads deferred (as built)": app.core.deps.SAFE_METHODS,
             "every transaction immediate": frozenset()}  # fmt: skip
    for name, safe in modes.items():
        app.core.deps.SAFE_METHODS = safe  # type: ignore[misc]
        print(f"{name}: {args.readers} readers, {args.writers} writers, {args.seconds:g} s")
        with server(settings, database) as base:
            load(base, points, args)
            behind_a_long_read(base, database, points, immediate=not safe)
    app.core.deps.SAFE_METHODS = modes["reads deferred (as built)"]  # type: ignore[misc]
    with server(settings, database) as base:
        writers_only(base, points, clients=10, each=40)
    database.dispose()


if __name__ == "__main__":
    main()
