"""Benchmark: report intake over HTTP against a running server, with a 12-megapixel photo.

    ./scripts/bench intake [--engine postgis|sqlite] [--photo-reports 40] [--json-reports 3000]
                           [--workers 1]

Starts `roadchief serve` on the scale-1 demo city (a fresh database each run) and sends:

1. multipart reports, each with one 4000×3000 phone JPEG (about 3.5 MB, EXIF orientation
   and GPS; a comment segment makes every upload distinct bytes so none is deduplicated),
   from 1 and then 10 concurrent clients: reports per second, latency, and the server's
   peak resident memory (sampled every 10 ms with psutil);
2. beside it, in this process, the floor: Pillow alone checking and deriving the same
   photo the same way (`app.media.images.process_photo`);
3. JSON-only reports (a category needing no photo) from 10 concurrent clients: reports
   per second.

Every report lands on a different grid cell, so none joins another's case.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import psutil
from PIL import ExifTags, Image
from shapely.geometry import shape
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.access.rules import SYSTEM
from app.core.database import Database, utcnow
from app.core.schema import run_migrations
from app.demo.loader import demo_layers, load_demo_city
from app.demo.users import DEMO_PASSWORD, create_demo_users
from app.media.images import process_photo
from app.routing.shipped import load_shipped_routing
from app.settings import Settings
from bench.common import OUT, stats
from bench.wire import encode, send_once

SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def phone_photo() -> bytes:
    """A 4000×3000 JPEG of phone-like size: smooth scene plus sensor noise, quality 92."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:3000, 0:4000]
    base = np.stack([(x / 16) % 256, (y / 12) % 256, ((x + y) / 28) % 256], axis=-1).astype(
        np.float32
    )
    noise = rng.normal(0, 9, size=base.shape)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (34.0, 48.0, 37.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (113.0, 37.0, 36.0),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def distinct(photo: bytes, n: int) -> bytes:
    """The same picture as different bytes: a JPEG comment (COM) segment after SOI."""
    comment = f"bench {n} {uuid.uuid4()}".encode()
    return photo[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + photo[2:]


def floor_ms(photo: bytes, settings: Settings, n: int = 10) -> list[float]:
    """Pillow alone: check and derive the photo exactly as intake does."""
    work = Path(tempfile.mkdtemp())
    source = work / "p.jpg"
    source.write_bytes(photo)
    samples = []
    for _ in range(n + 2):
        started = time.perf_counter()
        process_photo(
            source,
            work,
            max_pixels=settings.photo_max_pixels,
            max_jpeg_pixels=settings.photo_max_jpeg_pixels,
            display_px=settings.photo_display_px,
            thumbnail_px=settings.photo_thumbnail_px,
            zone=ZoneInfo("Asia/Shanghai"),
        )
        samples.append((time.perf_counter() - started) * 1000)
    shutil.rmtree(work)
    return samples[2:]


def fresh_database(engine: str, name: str = "intake") -> str:
    if engine == "sqlite":
        path = OUT / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = make_url(os.environ["ROADCHIEF_BENCH_POSTGRES_URL"])
    database = f"roadchief_bench_{name}"
    with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{database}"'))
    return admin.set(database=database).render_as_string(hide_password=False)


def prepare(url: str, media: Path) -> Settings:
    settings = Settings(database_url=url, secret_key=SECRET, media_dir=media)
    database = Database.from_settings(settings)
    run_migrations(database.engine)
    with database.sessions() as session:
        list(load_demo_city(session, settings))
        create_demo_users(session, settings)
        load_shipped_routing(session, SYSTEM)
    database.dispose()
    return settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    url: str, media: Path, workers: int, **env_more: str
) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ROADCHIEF_SECRET_KEY": SECRET,
        "ROADCHIEF_MEDIA_DIR": str(media),
        "ROADCHIEF_LOG_LEVEL": "WARNING",
        **env_more,
    }
    log = (OUT / "intake-server.log").open("w")
    command = Path(sys.executable).parent / "roadchief"
    proc = subprocess.Popen(
        [str(command), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit(f"server did not start; see {log.name}")
    try:
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


class PeakMemory:
    """Samples the resident memory of a process and its children every 10 ms."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        procs = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def token(base: str, username: str = "demo-chief-3") -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def cell_centres() -> list[tuple[float, float]]:
    cells = demo_layers()["grid_cells"]["features"]
    centres = [shape(f["geometry"]).centroid for f in cells]
    points = [(c.x, c.y) for c in centres]
    random.Random(3).shuffle(points)
    return points


def run(
    clients: int, total: int, send: Callable[[httpx.Client, int], httpx.Response], base: str
) -> tuple[float, list[float]]:
    """`total` requests from `clients` threads; (requests per second, latencies in ms)."""
    latencies: list[float] = []
    counter = iter(range(total))
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token(base)}"}

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                response = send(client, n)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 201:
                    raise SystemExit(f"request {n}: {response.status_code} {response.text[:300]}")
                with lock:
                    latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return total / (time.perf_counter() - started), latencies


def run_light(
    clients: int, total: int, request: Callable[[int], bytes], base: str
) -> tuple[float, list[float]]:
    """`run` for small JSON requests, from `clients` concurrent clients of one asyncio loop
    (`bench.wire`): httpx's own Python per request would take a tenth of the cores."""
    latencies: list[float] = []
    counter = iter(range(total))
    port = int(base.rsplit(":", 1)[1])

    async def client() -> None:
        for n in counter:
            raw = request(n)
            started = time.perf_counter()
            status, body = await send_once(port, raw)  # a connection per report, as phones
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 201:
                raise SystemExit(f"request {n}: {status} {body[:300]!r}")

    async def all_clients() -> None:
        await asyncio.gather(*(client() for _ in range(clients)))

    started = time.perf_counter()
    asyncio.run(all_clients())
    return total / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["postgis", "sqlite"], default="postgis")
    parser.add_argument("--photo-reports", type=int, default=40)
    parser.add_argument("--json-reports", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    media = OUT / "intake-media"
    shutil.rmtree(media, ignore_errors=True)
    url = fresh_database(args.engine)
    settings = prepare(url, media)
    photo = phone_photo()
    print(
        f"intake benchmark: {args.engine}, {args.workers} worker(s), photo 4000x3000 JPEG "
        f"{len(photo) / 1e6:.2f} MB, Python {platform.python_version()}, "
        f"{psutil.cpu_count()} CPUs"
    )
    floor = floor_ms(photo, settings)
    print(f"  floor (Pillow alone, same processing)   median {statistics.median(floor):.1f} ms")
    points = iter(cell_centres() * 10)

    def body(category: str) -> dict[str, object]:
        lon, lat = next(points)
        return {
            "category_code": category,
            "description": "基准测试上报",
            "lon": lon,
            "lat": lat,
            "accuracy_m": 6,
            "device_time": utcnow().isoformat(),
        }

    def photo_report(client: httpx.Client, n: int) -> httpx.Response:
        return client.post(
            "/api/v1/reports/multipart",
            data={"report": json.dumps(body("roads.surface"), ensure_ascii=False)},
            files=[("photos", ("p.jpg", distinct(photo, n), "image/jpeg"))],
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )

    def json_report(n: int) -> bytes:
        headers = {"Authorization": bearer, "Idempotency-Key": str(uuid.uuid4())}
        return encode("POST", "/api/v1/reports", headers, body("civility.public_behaviour"))

    with server(url, media, args.workers) as (base, process):
        idle = PeakMemory(process).rss()
        print(f"  server resident memory at rest          {idle / 2**20:.0f} MB")
        for clients in (1, 10) if args.photo_reports else ():
            with PeakMemory(process) as memory:
                rate, latencies = run(clients, args.photo_reports, photo_report, base)
            s = stats([ms / 1000 for ms in latencies])
            print(
                f"  photo reports, {clients:>2} client(s)             {rate:6.1f} reports/s  "
                f"latency median {s.median_ms:.0f} ms p95 {s.p95_ms:.0f} ms  "
                f"peak memory {memory.peak / 2**20:.0f} MB"
            )
            if clients == 1:
                ratio = s.median_ms / statistics.median(floor)
                print(f"    intake / floor per photo              {ratio:.2f}x")
        bearer = f"Bearer {token(base)}"
        with PeakMemory(process) as memory:
            rate, latencies = run_light(10, args.json_reports, json_report, base)
        s = stats([ms / 1000 for ms in latencies])
        print(
            f"  JSON-only reports, 10 clients           {rate:6.1f} reports/s  "
            f"latency median {s.median_ms:.1f} ms p95 {s.p95_ms:.1f} ms  "
            f"peak memory {memory.peak / 2**20:.0f} MB"
        )


if __name__ == "__main__":
    main()
