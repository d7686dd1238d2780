"""Benchmark: oversized request bodies against a running server (issue 15, item 2).

    ./scripts/bench bodies [--mb 400]

Starts `roadchief serve` (one worker, an empty SQLite database: no request here gets as
far as the database) and sends, one at a time, while another client asks `/healthz` every
50 ms:

1. an anonymous JSON body of `--mb` MB to `POST /api/v1/reports`, its Content-Length
   declared;
2. an anonymous chunked multipart body (one file) of that size to
   `POST /api/v1/reports/multipart`;
3. the same from a signed-in chief.

For each: the answer, how much the client had pushed into the connection when it came
(the server reads far less: the rest waits in socket buffers), the seconds to it, the
server's peak resident memory and the slowest `/healthz` answer meanwhile.
"""

from __future__ import annotations

import argparse
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.access.rules import Principal
from app.accounts.models import Role
from app.accounts.tokens import issue_access_token
from app.core.database import utcnow
from app.settings import Settings
from bench.common import OUT
from bench.intake import SECRET, PeakMemory, server

CHUNK = 64 * 1024
MB = 1024 * 1024


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


#: The start of a file part (boundary `xyz`): the rest of the body is that file's bytes.
FILE_PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="photos"; filename="p.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


def upload(port: int, head: bytes, size: int, *, chunked: bool) -> tuple[str, int, float]:
    """Send `head` and then up to `size` bytes until the server answers: the answer's
    first line and code, the bytes sent by then, the seconds it took. A chunked body is
    multipart: one file."""
    data = b"x" * CHUNK
    piece = _chunk(data) if chunked else data
    sent = 0
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as conn:
        conn.sendall(head + (_chunk(FILE_PART) if chunked else b""))
        answer = b""
        while True:
            readable, _, _ = select.select([conn], [], [], 0)
            if readable:
                break
            if sent >= size:
                conn.sendall(b"0\r\n\r\n" if chunked else b"")
                break
            try:
                conn.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        try:
            while chunk := conn.recv(65536):
                answer += chunk
                if b'"code"' in answer:
                    break
        except ConnectionResetError:
            pass
    seconds = time.perf_counter() - started
    first = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    code = answer.partition(b'"code":"')[2].partition(b'"')[0].decode()
    return f"{first} {code}".strip(), sent, seconds


@contextmanager
def health_poller(base: str) -> Iterator[list[float]]:
    """Ask /healthz every 50 ms; yields the list its answer times go to."""
    times: list[float] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get(f"{base}/healthz")
                times.append(time.perf_counter() - started)
                stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=400)
    args = parser.parse_args()
    size = args.mb * MB
    OUT.mkdir(exist_ok=True)
    url = f"sqlite:///{OUT / 'bodies.sqlite3'}"
    settings = Settings(database_url=url, secret_key=SECRET)
    chief = Principal(kind="user", id=1, name="bench", roles=frozenset({Role.ROAD_CHIEF}))
    token = issue_access_token(chief, utcnow(), settings)
    host = b"POST %s HTTP/1.1\r\nHost: bench\r\n"
    attacks = [
        (
            f"anonymous JSON, {args.mb} MB declared",
            host % b"/api/v1/reports"
            + f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode(),
            False,
        ),
        (
            f"anonymous multipart, {args.mb} MB chunked",
            host % b"/api/v1/reports/multipart"
            + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            + b"Transfer-Encoding: chunked\r\n\r\n",
            True,
        ),
        (
            f"signed-in multipart, {args.mb} MB chunked",
            host % b"/api/v1/reports/multipart"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            + b"Transfer-Encoding: chunked\r\n\r\n",
            True,
        ),
    ]
    with tempfile.TemporaryDirectory() as media, server(url, Path(media), 1) as (base, process):
        port = int(base.rsplit(":", 1)[1])
        for _, head, chunked in attacks:  # each route's first request builds it: not measured
            upload(port, head, CHUNK, chunked=chunked)
        print(f"server at rest: {process.memory_info().rss / MB:.0f} MB resident")
        print("| request | answer | sent before it | seconds | server peak | slowest /healthz |")
        print("|---|---|---|---|---|---|")
        for name, head, chunked in attacks:
            memory = PeakMemory(process)
            with memory, health_poller(base) as health:
                answer, sent, seconds = upload(port, head, size, chunked=chunked)
                time.sleep(1)
            slowest = max(health) * 1000 if health else float("nan")
            print(
                f"| {name} | {answer} | {sent / MB:.2f} MB | {seconds:.2f} | "
                f"{memory.peak / MB:.0f} MB | {slowest:.0f} ms |"
            )


if __name__ == "__main__":
    main()
