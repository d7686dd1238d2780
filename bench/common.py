"""What the benchmarks share: the ten-times demo city on both engines, and timing."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import app.wiring  # noqa: F401  (the domains' registrations)
from app.core.database import Database
from app.core.schema import run_migrations
from app.demo.loader import load_demo_city
from app.settings import Settings

OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Stats:
    n: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    def line(self) -> str:
        return (
            f"n={self.n}  median {self.median_ms:.3f} ms  p95 {self.p95_ms:.3f} ms  "
            f"p99 {self.p99_ms:.3f} ms  mean {self.mean_ms:.3f} ms"
        )


def stats(samples_s: list[float]) -> Stats:
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return Stats(len(ms), statistics.median(ms), q[94], q[98], statistics.fmean(ms))


def timed(fn: Callable[[], object], n: int, warmup: int = 50) -> Stats:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return stats(samples)


def engine_urls(scale: float) -> dict[str, str]:
    """SQLite file under bench/out, and a database on ROADCHIEF_BENCH_POSTGRES_URL."""
    OUT.mkdir(exist_ok=True)
    tag = f"city{scale:g}".replace(".", "_")
    urls = {"sqlite": f"sqlite:///{OUT / (tag + '.sqlite3')}"}
    admin = os.environ.get("ROADCHIEF_BENCH_POSTGRES_URL")
    if admin:
        urls["postgis"] = (
            make_url(admin)
            .set(database=f"roadchief_bench_{tag}")
            .render_as_string(hide_password=False)
        )
    return urls


def _ensure_pg_database(url: str) -> None:
    target = make_url(url)
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        exists = c.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).scalar()
        if not exists:
            c.execute(text(f'CREATE DATABASE "{target.database}"'))


@contextmanager
def demo_city(url: str, scale: float) -> Iterator[tuple[Database, Settings]]:
    """A migrated database holding the demo city at `scale` (built once, then reused)."""
    settings = Settings(database_url=url)
    if url.startswith("postgresql"):
        _ensure_pg_database(url)
    database = Database.from_settings(settings)
    run_migrations(database.engine)
    with database.sessions() as session:
        from app.demo.loader import territory_is_empty

        if territory_is_empty(session):
            started = time.perf_counter()
            for result in load_demo_city(session, settings, scale=scale):
                print(f"  loaded {result.layer}: {result.created}")
            print(f"  city loaded in {time.perf_counter() - started:.1f} s")
    if url.startswith("postgresql"):
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    try:
        yield database, settings
    finally:
        database.dispose()
