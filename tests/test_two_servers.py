"""Two API servers on one database and one S3 bucket: a photo uploaded to one is served by
the other, a report filed on one is stepped on the other, both run the background jobs at
once, one is killed (SIGKILL) in the middle of a deadline sweep, and every deadline event
and every webhook still happens exactly once.

PostGIS only, on purpose: SQLite is one file written by one process at a time, so there
is no second server to share work with (`app.jobs` says how the same claims behave
there). The test is parametrized on `postgis` alone rather than skipped on SQLite; it
skips only when the run has no PostGIS at all (ROADCHIEF_TEST_ENGINES=sqlite), and says so.

The kill lands mid-sweep deterministically: the test holds a row lock on the cases the
second round makes due, so server A's sweep blocks on its first event while holding its
claims; server B is paused (SIGSTOP) meanwhile, so A is the one holding them. Then A is
killed, B resumes, the lock is released: A's transaction rolls back, and B does the work.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from app.cases.models import Case, CaseEvent, CaseEventKind, CaseTask
from app.core.database import Database, utcnow
from app.demo.users import DEMO_PASSWORD
from app.notifications.models import DeliveryStatus, OutboxMessage, WebhookDelivery
from tests.support.databases import ENGINES, DatabaseFactory, new_demo_database
from tests.support.photos import jpeg
from tests.support.places import on_segment
from tests.support.s3 import CREDENTIALS, bucket, s3_endpoint  # noqa: F401 (the fixtures, by name)

ROOT = Path(__file__).resolve().parents[1]
CASES = 8  # per round


class Receiver:
    """A webhook receiver on loopback: counts each `webhook-id` it is sent."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        receiver = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.ids[self.headers["webhook-id"]] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`uvicorn --factory app.main:app_factory` in a process of its own, its own timer on."""

    def __init__(self, name: str, url: str, tmp: Path, s3: tuple[str, str]) -> None:
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROADCHIEF_")}
        env.update(
            # application_name lets the test see this server's connections in pg_stat_activity.
            DATABASE_URL=make_url(url).update_query_dict({"application_name": name})
            .render_as_string(hide_password=False),
            # No ROADCHIEF_SECRET_KEY: the servers must share the database's key.
            ROADCHIEF_SECRET_KEY_FILE=str(tmp / "no-key-file"),
            # Each server its own scratch directory; the photos are in the one bucket.
            ROADCHIEF_MEDIA_DIR=str(tmp / f"{name}-media"),
            ROADCHIEF_PHOTO_STORE="s3",
            ROADCHIEF_S3_ENDPOINT_URL=s3[0],
            ROADCHIEF_S3_BUCKET=s3[1],
            **CREDENTIALS,
            ROADCHIEF_BACKGROUND_INTERVAL_SECONDS="0.3",
            ROADCHIEF_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
            ROADCHIEF_WEBHOOK_TIMEOUT_SECONDS="5",
            ROADCHIEF_ARGON2_TIME_COST="1",
            ROADCHIEF_ARGON2_MEMORY_KIB="1024",
            ROADCHIEF_LOG_LEVEL="WARNING",
            ROADCHIEF_LOG_FORMAT="console",
        )  # fmt: skip
        self.log = (tmp / f"{name}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app.main:app_factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"{name} exited: see {self.log.name}"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def sign_in(base: str, username: str) -> dict[str, str]:
    answer = httpx.post(f"{base}/api/v1/auth/token", data={
        "grant_type": "password", "username": username, "password": DEMO_PASSWORD})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def wait_for(what: str, done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()


@pytest.mark.parametrize("engine", ["postgis"])
def test_two_servers_do_each_job_once_and_a_killed_one_loses_nothing(
    engine: str,
    database_factories: Callable[[str], DatabaseFactory],
    receiver: Receiver,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if engine not in ENGINES:
        pytest.skip("two servers need PostGIS, which ROADCHIEF_TEST_ENGINES leaves out")
    database: Database = new_demo_database(database_factories(engine))
    url = database.engine.url.render_as_string(hide_password=False)
    # One S3 server on loopback (moto), one bucket: the photo store both servers share.
    store = (request.getfixturevalue("s3_endpoint"), request.getfixturevalue("bucket"))
    servers = [Server(name, url, tmp_path, store) for name in ("a", "b")]
    a, b = servers
    try:
        _photo_taken_on_one_is_served_by_the_other(a, b, tmp_path)
        _story(database, a, b, receiver)
    finally:
        for server in servers:
            server.stop()


def _photo_taken_on_one_is_served_by_the_other(a: Server, b: Server, tmp: Path) -> None:
    """A photo uploaded to A is in the shared bucket: B serves it, from no file of its own."""
    chief = sign_in(a.base, "demo-chief-1")
    upload = httpx.post(f"{a.base}/api/v1/photos", headers=chief,
                        files={"file": ("p.jpg", jpeg(), "image/jpeg")})  # fmt: skip
    assert upload.status_code == 201, upload.text
    photo = upload.json()
    fetched = {}
    for server in (a, b):
        url = photo["original_url"].replace(a.base, server.base)
        if url.startswith("/"):
            url = server.base + url
        answer = httpx.get(url, headers=chief, follow_redirects=True)
        assert answer.status_code == 200, answer.text
        fetched[server.name] = answer.content
    assert fetched["a"] == fetched["b"]
    assert hashlib.sha256(fetched["b"]).hexdigest() == photo["sha256"]
    stored = [p for p in (tmp / "b-media").rglob("*") if p.is_file()]
    assert not [p for p in stored if photo["sha256"] in p.name]


def _story(database: Database, a: Server, b: Server, receiver: Receiver) -> None:
    # A token signed by one server is good on the other (the key is in the database).
    admin = sign_in(a.base, "demo-admin")
    hook = httpx.post(f"{b.base}/api/v1/admin/webhooks", headers=admin,
                      json={"name": "城市运行中心", "url": receiver.url})  # fmt: skip
    assert hook.status_code == 201, hook.text

    chief, dispatcher = sign_in(a.base, "demo-chief-1"), sign_in(b.base, "demo-dispatcher")
    numbers: list[str] = []
    with database.sessions() as db:
        spots = [on_segment(db, street="410199001", skip=i) for i in range(2 * CASES)]
    for spot in spots:  # reported on A, stepped on B
        report = httpx.post(f"{a.base}/api/v1/reports", headers=chief, json={
            "category_code": "civility.public_behaviour", "description": "乱扔垃圾",
            "lon": spot.lon, "lat": spot.lat, "accuracy_m": 8,
            "device_time": utcnow().isoformat()})  # fmt: skip
        assert report.status_code == 201, report.text
        number = report.json()["case_number"]
        for action, body in (
            ("register", {}),
            ("dispatch", {"units": ["urban-management"], "reason": "城管"}),
        ):
            version = httpx.get(f"{b.base}/api/v1/cases/{number}", headers=dispatcher).json()
            step = httpx.post(
                f"{b.base}/api/v1/cases/{number}/actions/{action}",
                json=body,
                headers={**dispatcher, "If-Match": f'"{version["version"]}"'},
            )
            assert step.status_code == 200, step.text  # fmt: skip
        numbers.append(number)
    assert len(set(numbers)) == 2 * CASES  # no report joined another's case

    with database.sessions() as db:
        case_ids = list(db.scalars(select(Case.id).where(Case.number.in_(numbers))))
    first, second = case_ids[:CASES], case_ids[CASES:]

    def make_due(ids: list[int]) -> None:
        past = utcnow() - timedelta(minutes=5)
        with database.sessions() as db:
            db.execute(update(CaseTask).where(CaseTask.case_id.in_(ids)).values(
                sign_for_due_at=past, handle_warn_at=past, handle_due_at=past,
                next_alarm_at=past))  # fmt: skip
            db.commit()

    def overdue(ids: list[int]) -> int:
        with database.sessions() as db:
            marks = select(func.count()).select_from(CaseEvent)
            marks = marks.where(CaseEvent.case_id.in_(ids), CaseEvent.kind == CaseEventKind.OVERDUE)
            return int(db.scalar(marks) or 0)

    def delivered() -> bool:
        with database.sessions() as db:
            return not db.scalar(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.status != DeliveryStatus.DELIVERED))  # fmt: skip

    # Round 1: both servers sweep at once.
    make_due(first)
    wait_for("the first round's overdue marks", lambda: overdue(first) >= CASES)
    wait_for("the first round's webhooks", delivered)

    # Round 2: B paused, A blocked mid-sweep on the test's row locks, then killed.
    b.process.send_signal(signal.SIGSTOP)
    with database.engine.connect() as blocker:
        blocker.execute(select(Case.id).where(Case.id.in_(second)).with_for_update())
        make_due(second)
        wait_for("server A's sweep to hold its claims", lambda: _waiting_on_lock(database, a.name))
        a.process.kill()  # SIGKILL: no cleanup, no commit
        a.process.wait(10)
        b.process.send_signal(signal.SIGCONT)
        blocker.rollback()
    wait_for("the second round's overdue marks", lambda: overdue(second) >= CASES)
    wait_for("the second round's webhooks", delivered)
    time.sleep(1.5)  # a few more rounds of B's timer: nothing more may be recorded

    _check_exactly_once(database, case_ids, receiver)


def _waiting_on_lock(database: Database, application_name: str) -> bool:
    """The server's connection waits for a lock inside a transaction that has written."""
    with database.engine.connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
            "AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL"),
            {"name": application_name}))  # fmt: skip


def _check_exactly_once(database: Database, case_ids: list[int], receiver: Receiver) -> None:
    with database.sessions() as db:
        events = db.execute(
            select(CaseEvent.case_id, CaseEvent.kind).where(
                CaseEvent.case_id.in_(case_ids), CaseEvent.actor_role == "system"
            )
        ).all()
        per_case = Counter((case_id, kind) for case_id, kind in events)
        for case_id in case_ids:  # one task each: one sign-for overdue, one overdue
            assert per_case[(case_id, CaseEventKind.SIGN_FOR_OVERDUE)] == 1, case_id
            assert per_case[(case_id, CaseEventKind.OVERDUE)] == 1, case_id
        assert set(per_case.values()) == {1}, per_case

        messages = set(db.scalars(select(OutboxMessage.message_id)))
        deliveries = db.execute(
            select(OutboxMessage.message_id, WebhookDelivery.status, WebhookDelivery.attempts).join(
                OutboxMessage, WebhookDelivery.message_id == OutboxMessage.id
            )
        ).all()
    # Every event became one message, one delivery, delivered once and received once.
    assert len(messages) >= 5 * len(case_ids)  # reported, registered, dispatched, 2 marks
    assert sorted(m for m, _, _ in deliveries) == sorted(messages)
    assert {(s, n) for _, s, n in deliveries} == {(DeliveryStatus.DELIVERED, 1)}
    assert set(receiver.ids) == messages
    assert set(receiver.ids.values()) == {1}, "a webhook was sent twice"
