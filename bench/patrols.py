"""Benchmark: a district's day of patrols on PostGIS — fix ingest and coverage.

    ./scripts/bench patrols [--chiefs 300] [--clients 8] [--workers 2]

On a fresh scale-1 demo city: `--chiefs` road chiefs each start a two-hour patrol and send
it at one fix per 5 s (1,440 fixes) in batches of 50, from `--clients` concurrent clients
against `roadchief serve --workers N`: fixes stored per second. The batches are encoded
before the clock starts, and each phone has its own connection. Then, in-process, ending
a patrol whose track walks 20 road segments end to end: the time to clean the track and
measure each segment's coverage.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import psutil
from geoalchemy2.shape import to_shape
from shapely.geometry import LineString
from sqlalchemy import select

from app.access.rules import SignedIn
from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, principal_for_user, user_by_username
from app.accounts.tokens import issue_access_token
from app.core.database import Database, utcnow
from app.core.geo import geodesic_length_m
from app.patrols.models import Patrol
from app.patrols.schemas import FixBatch, FixIn, PatrolStart
from app.patrols.service import append_fixes, end_patrol, start_patrol
from app.territory.models import Jurisdiction, JurisdictionLevel, RoadSegment
from bench.common import OUT, stats
from bench.intake import fresh_database, prepare, server

BATCH, EVERY_S, FIXES = 50, 5, 1440


def chiefs(database: Database, settings: object, n: int) -> list[str]:
    """`n` level-3 road chiefs (cheap password hashes: sign-in is not measured)."""
    tokens = []
    with database.sessions() as session:
        street = session.scalar(
            select(Jurisdiction.code).where(Jurisdiction.level == JurisdictionLevel.STREET)
        )
        for i in range(n):
            data = UserCreate(
                username=f"bench-chief-{i}", display_name=f"路长{i}", password="Bench#2026patrol",
                roles=[Role.ROAD_CHIEF], chief_level=3, jurisdiction_codes=[street],
            )  # fmt: skip
            create_user(session, settings, None, data)  # type: ignore[arg-type]
            user = user_by_username(session, data.username)
            tokens.append(issue_access_token(principal_for_user(user), utcnow(), settings))  # type: ignore[arg-type]
    return tokens


def segment_walk(database: Database, count: int) -> list[tuple[float, float, float]]:
    """(lon, lat, seconds) along `count` segments end to end, at 1.4 m/s."""
    with database.sessions() as session:
        lines = [to_shape(g) for g in session.scalars(
            select(RoadSegment.geom).order_by(RoadSegment.code).limit(count)
        )]  # fmt: skip
    points: list[tuple[float, float]] = []
    for line in lines:
        steps = max(2, int(geodesic_length_m(line) // 7))
        points += [tuple(line.interpolate(i / steps, normalized=True).coords[0])
                   for i in range(steps + 1)]  # type: ignore[misc]  # fmt: skip
    walk, seconds = [], 0.0
    for a, b in itertools.pairwise(points):
        walk.append((a[0], a[1], seconds))
        seconds += max(1.0, geodesic_length_m(LineString([a, b])) / 1.4)
    walk.append((points[-1][0], points[-1][1], seconds))
    return walk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chiefs", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    media = OUT / "patrols-media"
    shutil.rmtree(media, ignore_errors=True)
    url = fresh_database("postgis", "patrols")
    settings = prepare(url, media)
    settings = settings.model_copy(update={"argon2_time_cost": 1, "argon2_memory_kib": 1024})
    database = Database.from_settings(settings)
    print(f"patrols benchmark: PostGIS, Python {platform.python_version()}, "
          f"{psutil.cpu_count()} CPUs, {args.workers} server worker(s)")  # fmt: skip
    tokens = chiefs(database, settings, args.chiefs)
    began = utcnow() - timedelta(hours=2, minutes=5)
    walk = segment_walk(database, 20)
    lon0, lat0 = walk[0][0], walk[0][1]
    latencies: list[float] = []
    lock = threading.Lock()

    # The phones' work (building and encoding each batch) is done before the clock starts:
    # the clients share the server's two cores, and a phone's CPU is not the server's.
    batches = [
        json.dumps({"fixes": [
            {"recorded_at": (began + timedelta(seconds=EVERY_S * i)).isoformat(),
             "lon": lon0 + (i % 97) * 1e-5, "lat": lat0 + (i % 89) * 1e-5, "accuracy_m": 8}
            for i in range(start, min(FIXES, start + BATCH))
        ]}).encode()
        for start in range(0, FIXES, BATCH)
    ]  # fmt: skip

    def chief(token: str, client: httpx.Client) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        created = client.post("/api/v1/patrols", json={"started_at": began.isoformat()},
                              headers=headers)  # fmt: skip
        created.raise_for_status()
        patrol = created.json()["id"]
        headers["Content-Type"] = "application/json"
        for body in batches:
            t = time.perf_counter()
            response = client.post(f"/api/v1/patrols/{patrol}/fixes", content=body,
                                   headers=headers)  # fmt: skip
            elapsed = time.perf_counter() - t
            if response.status_code != 200:
                raise SystemExit(f"fixes: {response.status_code} {response.text[:300]}")
            with lock:
                latencies.append(elapsed)

    with server(url, media, args.workers, ROADCHIEF_BACKGROUND_INTERVAL_SECONDS="0") as (base, _):
        queue = iter(tokens)

        def worker() -> None:
            while True:
                with lock:
                    token = next(queue, None)
                if token is None:
                    return
                # Each phone has its own connection, as 300 phones would: the server's
                # workers share them out (one client's keep-alive connection would stay
                # with one worker all run long).
                with httpx.Client(base_url=base, timeout=60) as client:
                    chief(token, client)

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            for future in [pool.submit(worker) for _ in range(args.clients)]:
                future.result()
        elapsed = time.perf_counter() - started
    total = len(tokens) * FIXES
    s = stats(latencies)
    print(f"  ingest: {total:,} fixes in {elapsed:.1f} s = {total / elapsed:,.0f} fixes/s "
          f"({args.clients} clients; batch of {BATCH}: median {s.median_ms:.1f} ms, "
          f"p95 {s.p95_ms:.1f} ms)")  # fmt: skip

    # Coverage: one patrol walking 20 segments end to end, ended in-process.
    with database.sessions() as session:
        user = user_by_username(session, "bench-chief-0")
        walker = SignedIn.of(principal_for_user(user))
        running = session.scalar(
            select(Patrol.id).where(Patrol.user_id == user.id, Patrol.ended_at.is_(None))
        )
        if running is not None:
            end_patrol(session, settings, walker, running)
        times = []
        for run in range(7):
            start_at = utcnow() - timedelta(seconds=walk[-1][2] + 60)
            patrol = start_patrol(session, settings, walker, PatrolStart(started_at=start_at),
                                  None)  # fmt: skip
            patrol_id = patrol.id
            fixes = [FixIn(recorded_at=start_at + timedelta(seconds=sec), lon=lon, lat=lat,
                           accuracy_m=5) for lon, lat, sec in walk]  # fmt: skip
            for i in range(0, len(fixes), 500):
                append_fixes(
                    session, settings, walker, patrol_id, FixBatch(fixes=fixes[i : i + 500])
                )
            t = time.perf_counter()
            ended = end_patrol(session, settings, walker, patrol_id)
            if run >= 2:  # warm
                times.append(time.perf_counter() - t)
        s = stats(times) if len(times) > 1 else None
        covered = [x for x in ended.segments if x.complete]
        print(f"  end and coverage of a patrol over {len(ended.segments)} segments "
              f"({len(covered)} complete), {len(walk)} fixes, {ended.distance_m:,.0f} m: "
              f"median {s.median_ms if s else times[0] * 1000:.1f} ms")  # fmt: skip
    database.dispose()


if __name__ == "__main__":
    main()
