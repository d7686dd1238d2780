"""Benchmark: the service's throughput beside a bare FastAPI floor, in the same run.

Starts `roadchief serve` (one worker, default logging: one JSON line a request, written to
a file) on a fresh scale-1 demo city, and `bench.floor_app` (a bare FastAPI app with the
same uvicorn settings). Then, in rounds, each measured for `--seconds` with `--connections`
keep-alive connections from a small asyncio HTTP/1.1 client in this process:

- the floor's `GET /floor-async` then `/healthz` (both `async` endpoints), the floor's
  `GET /floor` (a sync one, run in the thread pool) then `GET /api/v1/me` (demo-chief-2, a
  level-2 chief with 254 segments) and `GET /api/v1/territory/locate`;
- the floor's `POST /floor` (a small JSON body, validated), then a JSON report
  (`POST /api/v1/reports`, a category that needs no photo, a new grid cell each time).

Each figure is requests per second, and its ratio to the floor measured just before it in
the same round (so a busy machine slows both alike), and the server process's CPU time per
request (all its threads; less moved by other work on the machine than the rates); the
medians of the rounds are printed.

    ./scripts/bench overhead [--engine sqlite|postgis] [--seconds 2] [--rounds 5]
        [--connections 8] [--service-root PATH]

`--service-root` runs the service from another checkout (e.g. the commit before a change),
with this checkout's floor and client: before and after in one command each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from app.core.database import utcnow
from bench.common import OUT
from bench.intake import SECRET, cell_centres, free_port, fresh_database, prepare, token
from bench.wire import Connection

Request = Callable[[int], bytes]


def get(path: str, bearer: str | None = None) -> Request:
    auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
    raw = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()
    return lambda _n: raw


def post_json(path: str, body: Callable[[int], dict[str, object]], bearer: str | None) -> Request:
    auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""

    def make(n: int) -> bytes:
        data = json.dumps(body(n), ensure_ascii=False).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\n"
            f"Idempotency-Key: {uuid.uuid4()}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    return make


async def _one_connection(
    port: int, make: Request, until: float, counter: list[int], expect: int
) -> None:
    connection = await Connection.open(port)
    try:
        while time.perf_counter() < until:
            n = counter[0]
            counter[0] += 1
            status, body = await connection.send(make(n))
            if status != expect:
                raise SystemExit(f"{status}: {body[:300]!r}")
            counter[1] += 1
    finally:
        await connection.close()


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def measured(
    process: psutil.Process,
    port: int,
    make: Request,
    seconds: float,
    connections: int,
    expect: int,
) -> tuple[float, float]:
    """(requests per second, the server's CPU milliseconds per request)."""
    counter = [0, 0]
    cpu = cpu_seconds(process)
    rate = throughput(port, make, seconds, connections, expect, counter)
    return rate, (cpu_seconds(process) - cpu) * 1000 / max(counter[1], 1)


def throughput(
    port: int,
    make: Request,
    seconds: float,
    connections: int,
    expect: int,
    counter: list[int] | None = None,
) -> float:
    """Requests per second answered by `port` over `seconds` from `connections` clients."""
    counter = counter if counter is not None else [0, 0]

    async def run() -> float:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(_one_connection(port, make, until, counter, expect) for _ in range(connections))
        )
        return counter[1] / (time.perf_counter() - started)

    return asyncio.run(run())


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{url} did not answer; see {log}")


@contextmanager
def started(
    command: list[str], env: dict[str, str], probe: str, name: str
) -> Iterator[psutil.Process]:
    log = OUT / f"overhead-{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(probe, process, log)
            yield psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgis"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--service-root", type=Path, default=None)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    media = OUT / "overhead-media"
    url = fresh_database(args.engine, "overhead")
    prepare(url, media)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ROADCHIEF_SECRET_KEY": SECRET,
        "ROADCHIEF_MEDIA_DIR": str(media),
        "ROADCHIEF_BACKGROUND_INTERVAL_SECONDS": "0",
    }
    service_env = dict(env)
    if args.service_root is not None:
        service_env["PYTHONPATH"] = str(args.service_root.resolve())
    service_port, floor_port = free_port(), free_port()
    service_cmd = [str(bin_dir / "roadchief"), "serve", "--port", str(service_port)]
    floor_cmd = [sys.executable, "-m", "bench.floor_app", str(floor_port)]
    base = f"http://127.0.0.1:{service_port}"
    print(
        f"overhead benchmark: {args.engine}, one worker each, {args.connections} connections, "
        f"{args.seconds:g} s a measure, {args.rounds} rounds, Python "
        f"{platform.python_version()}, {psutil.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        + (f", service from {args.service_root}" if args.service_root else "")
    )
    with (
        started(service_cmd, service_env, f"{base}/healthz", "service") as service_process,
        started(floor_cmd, env, f"http://127.0.0.1:{floor_port}/floor", "floor") as floor_process,
    ):
        chief2, chief3 = token(base, "demo-chief-2"), token(base, "demo-chief-3")
        points = cell_centres()

        def report(n: int) -> dict[str, object]:
            lon, lat = points[n % len(points)]
            return {
                "category_code": "civility.public_behaviour",
                "description": "基准测试上报",
                "lon": lon,
                "lat": lat,
                "accuracy_m": 6,
                "device_time": utcnow().isoformat(),
            }

        lon, lat = points[0]
        floor_body = {"category_code": "x", "description": "基准测试上报", "lon": lon, "lat": lat}
        floor_get = (floor_port, get("/floor"), 200)
        # `/healthz` is `async` (nothing in it blocks), so its floor is an `async` endpoint;
        # the service's other measures run in the thread pool, like the floor's `GET /floor`.
        floor_async = (floor_port, get("/floor-async"), 200)
        floor_post = (floor_port, post_json("/floor", lambda _n: floor_body, None), 201)
        measures: list[tuple[str, tuple[int, Request, int], tuple[int, Request, int]]] = [
            ("/healthz", floor_async, (service_port, get("/healthz"), 200)),
            ("GET /me (level-2 chief)", floor_get, (service_port, get("/api/v1/me", chief2), 200)),
            (
                "locate",
                floor_get,
                (
                    service_port,
                    get(f"/api/v1/territory/locate?lon={lon}&lat={lat}", chief3),
                    200,
                ),
            ),
            (
                "JSON report",
                floor_post,
                (service_port, post_json("/api/v1/reports", report, chief3), 201),
            ),
        ]
        for _name, floor, service in measures:  # warm both: caches, code paths, connections
            throughput(*floor[:2], 1, 2, floor[2])
            throughput(*service[:2], 1, 2, service[2])
        results: dict[str, list[tuple[float, float, float, float]]] = {m[0]: [] for m in measures}
        for _ in range(args.rounds):
            for name, floor, service in measures:
                f, f_cpu = measured(
                    floor_process, *floor[:2], args.seconds, args.connections, floor[2]
                )
                s, s_cpu = measured(
                    service_process, *service[:2], args.seconds, args.connections, service[2]
                )
                results[name].append((f, s, f_cpu, s_cpu))
        print(
            f"  {'measure':<26}{'floor /s':>10}{'service /s':>12}{'ratio':>8}"
            f"{'CPU ms/req floor':>18}{'service':>9}   rounds (service/floor per s)"
        )
        for name, rows in results.items():
            f = statistics.median(r[0] for r in rows)
            s = statistics.median(r[1] for r in rows)
            ratio = statistics.median(r[1] / r[0] for r in rows)
            f_cpu = statistics.median(r[2] for r in rows)
            s_cpu = statistics.median(r[3] for r in rows)
            each = ", ".join(f"{r[1]:.0f}/{r[0]:.0f}" for r in rows)
            print(
                f"  {name:<26}{f:>10.0f}{s:>12.0f}{ratio:>8.0%}{f_cpu:>18.2f}{s_cpu:>9.2f}   {each}"
            )


if __name__ == "__main__":
    main()
