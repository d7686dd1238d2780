"""Request bodies at the edge: no one reads an anonymous body, every body has a limit that
holds while it streams (chunked included), a slow body is cut off, and a body the parser
cannot read is a specific problem.

The attacks are sent to the app as a server would hand them over (ASGI), so each test can
count the body bytes the app took from `receive`: the proof that it stopped reading.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from app.core.database import Database
from app.core.deps import get_db_session
from app.main import create_app
from app.settings import Settings
from tests.support import Headers
from tests.support.actors import PUBLIC
from tests.support.places import Spot
from tests.support.reports import report_body, stored

CHUNK = 64 * 1024
MB = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    #: Body bytes the app took from `receive`.
    read: int


def flood(size: int = 50 * MB, chunk: bytes = b"x" * CHUNK) -> Iterator[bytes]:
    """A big body in chunks (50 MB: a test that fails ends rather than reading for ever)."""
    for _ in range(size // len(chunk)):
        yield chunk


def send(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes],
    *,
    pause: float = 0.0,
) -> Answer:
    """One request as uvicorn hands it over: `body` in messages, `pause` seconds before
    each. Without a content-length header the body is chunked."""
    read = 0
    chunks = iter(body)
    upcoming = next(chunks, None)
    messages: list[dict[str, Any]] = []
    answered = anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal read, upcoming
        chunk = upcoming
        if chunk is None:  # the body is over: what follows is the client going away
            await answered.wait()
            return {"type": "http.disconnect"}
        if pause:
            await anyio.sleep(pause)
        read += len(chunk)
        upcoming = next(chunks, None)
        return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

    async def send_message(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if "content-length" not in {k.lower() for k in headers}:
        scope["headers"].append((b"transfer-encoding", b"chunked"))

    async def run() -> None:
        await app(scope, receive, send_message)

    anyio.run(run)
    start = messages[0]
    content = b"".join(m.get("body", b"") for m in messages[1:])
    return Answer(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        body=json.loads(content) if content else {},
        read=read,
    )


def problem(answer: Answer) -> tuple[int, str]:
    assert answer.headers["content-type"] == "application/problem+json", answer
    assert re.search(r"[\u4e00-\u9fff]", answer.body["title"]), answer.body  # Chinese
    return answer.status, answer.body["code"]


JSON = {"content-type": "application/json"}
#: The start of a file in a multipart body (boundary `xyz`), its bytes to follow.
FILE_PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


@pytest.fixture
def app_with(
    settings: Settings, demo_database: Database, session: Session
) -> Callable[..., FastAPI]:
    """The app with changed settings (limits), on the test's session."""

    def make(**changes: Any) -> FastAPI:
        app = create_app(settings.model_copy(update=changes), demo_database)
        app.dependency_overrides[get_db_session] = lambda: session
        return app

    return make


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_no_protected_route_reads_a_byte_of_an_anonymous_body(app: FastAPI) -> None:
    operations = [
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if (method.upper(), path) not in PUBLIC
    ]
    assert len(operations) > 40
    for method, path in operations:
        answer = send(app, method, _url(path), JSON, flood())
        assert problem(answer) == (401, "not_authenticated"), (method, path)
        assert answer.read == 0, (method, path)


def test_bad_credentials_are_refused_before_the_body_too(
    app: FastAPI, as_user: Headers, settings: Settings
) -> None:
    token = as_user("demo-chief-3")["Authorization"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    cases = [
        ({"Authorization": forged}, "token_invalid"),
        ({"Authorization": "Bearer not-a-token"}, "token_invalid"),
        ({"X-API-Key": "hello"}, "api_key_invalid"),
    ]
    form = {"content-type": "multipart/form-data; boundary=xyz"}
    geojson = {"content-type": "application/geo+json"}
    for path, kind in [("/api/v1/reports", JSON), ("/api/v1/reports/multipart", form),
                       ("/api/v1/photos", form),
                       ("/api/v1/admin/territory/assets/import", geojson)]:  # fmt: skip
        for headers, code in cases:
            answer = send(app, "POST", path, {**kind, **headers}, flood())
            assert problem(answer) == (401, code), (path, code)
            assert answer.read == 0
            assert answer.headers["connection"] == "close"  # the body is never read
            assert "www-authenticate" in answer.headers


def test_a_body_over_the_limit_is_cut_off_while_it_streams(
    app: FastAPI, as_user: Headers, settings: Settings, session: Session
) -> None:
    chief = {**JSON, **as_user("demo-chief-3")}
    before = stored(session, settings)

    chunked = send(app, "POST", "/api/v1/reports", chief, flood())
    assert problem(chunked) == (413, "body_too_large")
    assert chunked.body["max_bytes"] == settings.body_max_bytes == MB
    assert MB < chunked.read <= MB + CHUNK  # it stopped at the first chunk past the limit
    assert chunked.headers["connection"] == "close"

    declared = send(app, "POST", "/api/v1/reports", {**chief, "content-length": "400000000"},
                    flood())  # fmt: skip
    assert problem(declared) == (413, "body_too_large")
    assert declared.read == 0  # its content-length said so: nothing read

    # A multipart upload is cut off at its own, larger limit, before it is all on disk.
    photos_limit = settings.photo_max_bytes + 64 * 1024
    upload = send(app, "POST", "/api/v1/photos",
                  {**chief, "content-type": "multipart/form-data; boundary=xyz"},
                  itertools.chain([FILE_PART], flood()))  # fmt: skip
    assert problem(upload) == (413, "body_too_large")
    assert upload.body["max_bytes"] == photos_limit
    assert photos_limit < upload.read <= photos_limit + CHUNK
    assert stored(session, settings) == before


def _noise_jpeg(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_uploads_and_imports_have_larger_limits_than_the_rest(
    app_with: Callable[..., FastAPI], as_user: Headers, spot: Spot
) -> None:
    app = app_with(body_max_bytes=16 * 1024, photo_max_bytes=256 * 1024)
    chief = as_user("demo-chief-3")
    photo = _noise_jpeg(200)
    assert 16 * 1024 < len(photo) < 256 * 1024
    padded = report_body(spot, description="路面坑洼" * 2000)
    assert len(json.dumps(padded).encode()) > 16 * 1024

    with TestClient(app, raise_server_exceptions=False, headers=chief) as client:
        too_big = client.post("/api/v1/reports", json=padded)
        assert (too_big.status_code, too_big.json()["code"]) == (413, "body_too_large")
        uploaded = client.post("/api/v1/photos", files={"file": ("p.jpg", photo, "image/jpeg")})
        assert uploaded.status_code == 201, uploaded.text
        report = client.post(
            "/api/v1/reports/multipart",
            data={"report": json.dumps(report_body(spot))},
            files=[("photos", ("p.jpg", photo, "image/jpeg"))],
        )
        assert report.status_code == 201, report.text
        # An import far over the default limit reaches the importer (which finds no
        # features), not the gate.
        document = {"type": "FeatureCollection", "features": [], "padding": "x" * 100_000}
        imported = client.post("/api/v1/admin/territory/assets/import", json=document,
                               headers=as_user("demo-admin"))  # fmt: skip
        assert imported.status_code != 413, imported.text


def test_an_api_key_may_send_the_default_limit_at_most(
    app_with: Callable[..., FastAPI],
) -> None:
    """A key is only looked up when the route runs, and keys are read-only: a well-formed
    but unknown key gets no upload's larger limit."""
    app = app_with(body_max_bytes=16 * 1024)
    key = {"X-API-Key": "rck_0123456789ab_" + "k" * 43}
    form = {**key, "content-type": "multipart/form-data; boundary=xyz"}
    upload = send(app, "POST", "/api/v1/photos", form, itertools.chain([FILE_PART], flood()))
    assert problem(upload) == (413, "body_too_large")
    assert upload.read <= 16 * 1024 + CHUNK
    small = send(app, "POST", "/api/v1/reports", {**JSON, **key}, [b"{}"])
    assert problem(small) == (401, "api_key_invalid")


def test_a_slow_body_is_cut_off(
    app_with: Callable[..., FastAPI], as_user: Headers, spot: Spot
) -> None:
    app = app_with(body_timeout_seconds=0.3, body_min_rate=1000)
    chief = {**JSON, **as_user("demo-chief-3")}
    dripped = send(app, "POST", "/api/v1/reports", chief, flood(100, b"x"), pause=0.05)
    assert problem(dripped) == (408, "body_timeout")
    assert 3 <= dripped.read < 12  # about 0.3 s of one byte every 0.05 s
    assert dripped.headers["connection"] == "close"
    # A body that keeps up is read to its end, however many pieces it comes in.
    body = json.dumps(report_body(spot)).encode()
    pieces = [body[i : i + 50] for i in range(0, len(body), 50)]
    steady = send(app, "POST", "/api/v1/reports", chief, [*pieces], pause=0.01)
    assert steady.read == len(body)
    assert problem(steady) == (422, "photo_required")  # the route's answer, not the gate's


def test_sign_in_still_takes_its_body_without_credentials(anonymous: TestClient) -> None:
    answer = anonymous.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "demo-chief-3", "password": "Jinhe@2026"},
    )
    assert answer.status_code == 200, answer.text
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200


def test_a_body_the_parser_cannot_read_is_a_specific_problem(
    app_with: Callable[..., FastAPI], as_user: Headers, spot: Spot, session: Session,
    settings: Settings,
) -> None:  # fmt: skip
    app = app_with(body_max_bytes=16 * 1024)
    before = stored(session, settings)
    gbk = json.dumps(report_body(spot), ensure_ascii=False).encode("gbk")
    multipart = {"content-type": "multipart/form-data; boundary=xyz"}
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("GBK JSON", {"url": "/api/v1/reports", "content": gbk, "headers": JSON}, 400,
         "body_not_utf8"),
        ("no boundary", {"url": "/api/v1/reports/multipart", "content": b"--xyz\r\n",
         "headers": {"content-type": "multipart/form-data"}}, 400, "form_invalid"),
        ("garbage", {"url": "/api/v1/reports/multipart", "content": b"garbage\r\n--",
         "headers": multipart}, 400, "form_invalid"),
        ("a part with no name", {"url": "/api/v1/reports/multipart",
         "content": b"--xyz\r\nContent-Disposition: form-data\r\n\r\n{}\r\n--xyz--\r\n",
         "headers": multipart}, 400, "form_invalid"),
        ("two files for one", {"url": "/api/v1/photos", "files": [
            ("file", ("a.jpg", b"a", "image/jpeg")), ("file", ("b.jpg", b"b", "image/jpeg"))]},
         413, "form_limit_exceeded"),
        ("a flood of fields", {"url": "/api/v1/reports/multipart",
         "data": {f"f{i}": "1" for i in range(21)}, "files": [("photos", ("p", b"p"))]},
         413, "form_limit_exceeded"),
        ("a text field over the limit", {"url": "/api/v1/reports/multipart",
         "data": {"report": "x" * 17 * 1024}, "files": [("photos", ("p", b"p"))]},
         413, "form_limit_exceeded"),
    ]  # fmt: skip
    with TestClient(app, raise_server_exceptions=False, headers=as_user("demo-chief-3")) as client:
        for name, request, status, code in cases:
            answer = client.post(**request)
            assert answer.headers["content-type"] == "application/problem+json", name
            body = answer.json()
            assert (answer.status_code, body["code"]) == (status, code), (name, body)
            assert re.search(r"[\u4e00-\u9fff]", body["title"] + body["detail"]), name
            assert not re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", body["detail"]), name
    assert stored(session, settings) == before


def test_the_api_document_lists_the_body_problems(app: FastAPI) -> None:
    operations = app.openapi()["paths"]
    report = operations["/api/v1/reports"]["post"]["responses"]
    assert "`body_not_utf8`" in report["400"]["description"]
    assert "`body_too_large`" in report["413"]["description"]
    assert "`body_timeout`" in report["408"]["description"]
    upload = operations["/api/v1/photos"]["post"]["responses"]
    assert "`form_limit_exceeded`" in upload["413"]["description"]
    assert "`photo_too_large`" in upload["413"]["description"]  # kept beside it
    assert "408" not in operations["/api/v1/me"]["get"]["responses"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int, head: bytes, body: bytes = b"", wait: float = 10.0) -> tuple[int, bytes]:
    """Send a request head and part of its body on a fresh connection; the status and
    everything the server sent before it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(head + body)
        answer = b""
        while chunk := conn.recv(65536):  # until the server closes it
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    """`roadchief serve` on a free loopback port, with small bounds to run into."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "ROADCHIEF_SECRET_KEY": "a-signing-key-for-this-test-only-0123456789",
        "ROADCHIEF_BACKGROUND_INTERVAL_SECONDS": "0",
        "ROADCHIEF_LOG_LEVEL": "WARNING",
        "ROADCHIEF_SERVER_LIMIT_CONCURRENCY": "3",
        "ROADCHIEF_BODY_TIMEOUT_SECONDS": "1",
    }
    command = Path(sys.executable).parent / "roadchief"
    process = subprocess.Popen(
        [str(command), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # a loaded machine imports slowly
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert process.poll() is None, "roadchief serve stopped"
                assert time.monotonic() < deadline, "roadchief serve did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_roadchief_serve_bounds_connections_and_bodies(server: int) -> None:
    """The same attacks against the real server: it refuses an anonymous 1 GB upload
    without waiting for its body and closes the connection, cuts off a slow body, and
    answers 503 beyond its connection bound instead of queueing."""
    head = (
        b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    status, answer = _exchange(server, head)  # answered before a byte of the body is sent
    assert (status, b"not_authenticated" in answer) == (401, True)

    sign_in = (
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
    )
    status, answer = _exchange(server, sign_in, b"grant_type=pass")  # and nothing more
    assert (status, b"body_timeout" in answer) == (408, True)

    idle = [socket.create_connection(("127.0.0.1", server)) for _ in range(2)]
    try:
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{server}/healthz").status_code == 503
    finally:
        for conn in idle:
            conn.close()
    time.sleep(0.2)
    assert httpx.get(f"http://127.0.0.1:{server}/healthz").status_code == 200
