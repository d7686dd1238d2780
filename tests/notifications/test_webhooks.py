"""Case events reach a city's other systems as signed webhooks: through an outbox, so a
receiver that is down gets them later, and a receiver can prove who sent them. Webhooks
reach only the public internet (this suite's loopback receivers are allowed by name), a
slow or huge answer holds nobody, and the log tells why an attempt failed, not what the
network said."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Verifier

from app.cases.models import Case, CaseTask
from app.core.database import Database, utcnow
from app.core.deps import get_db_session
from app.main import create_app
from app.notifications.delivery import deliver_due, webhook_client
from app.notifications.models import Webhook
from app.settings import Settings
from tests.support.cases import Loop
from tests.support.live import serve, signed_in
from tests.support.places import on_segment

Handler = BaseHTTPRequestHandler


class Receiver:
    """A real HTTP endpoint on loopback: records each request, answers as told (200 once
    the told answers run out), or misbehaves as told (`misbehave(handler)`)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: deque[int] = deque()
        self.misbehave: Callable[[Handler], None] | None = None
        #: Set when a misbehaving answer has ended, or the client went away during it.
        self.done = threading.Event()
        #: Bytes of a misbehaving answer that got out before it ended.
        self.sent = 0
        receiver = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((dict(self.headers.items()), body))
                if receiver.misbehave is not None:
                    try:
                        receiver.misbehave(self)
                    except OSError:
                        pass  # the client hung up
                    finally:
                        receiver.done.set()
                    return
                self.send_response(receiver.answers.popleft() if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/roadchief"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with webhook_client(settings) as client:
        yield client


@pytest.fixture
def unallowed(settings: Settings) -> Settings:
    """The defaults: webhooks reach public addresses only."""
    return settings.model_copy(update={"webhook_allowed_networks": ()})


@pytest.fixture
def admin_without_allow_list(
    unallowed: Settings, demo_database: Database, session: Session, as_user: Any
) -> Iterator[TestClient]:
    app = create_app(unallowed, demo_database)
    app.dependency_overrides[get_db_session] = lambda: session
    with TestClient(app, raise_server_exceptions=False, headers=as_user("demo-admin")) as client:
        yield client


def add_webhook(loop: Loop, url: str, *types: str) -> dict[str, Any]:
    response = loop.client.post(
        "/api/v1/admin/webhooks",
        json={"name": "城市运行中心", "url": url, "event_types": list(types)},
        headers=loop.as_user("demo-admin"),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(loop: Loop, hook_id: int) -> list[dict[str, Any]]:
    response = loop.client.get(
        f"/api/v1/admin/webhooks/{hook_id}/deliveries", headers=loop.as_user("demo-admin")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_dispatch_is_delivered_signed(
    loop: Loop, receiver: Receiver, session: Session, settings: Settings, http: httpx.Client
) -> None:
    hook = add_webhook(loop, receiver.url, "case.dispatched")
    assert hook["secret"].startswith("whsec_")
    listed = loop.client.get("/api/v1/admin/webhooks", headers=loop.as_user("demo-admin")).json()
    assert "secret" not in listed[0]

    loop.ok("demo-dispatcher", "register")  # not wanted by this webhook
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管处置")
    run = deliver_due(session, settings, http)
    assert (run.delivered, run.retrying, run.failed) == (1, 0, 0)

    [(headers, body)] = receiver.received
    payload = Verifier(hook["secret"]).verify(body, headers)  # raises if the signature is wrong
    assert payload["type"] == "case.dispatched"
    assert payload["data"]["case"]["number"] == loop.number
    assert payload["data"]["event"]["to_status"] == "dispatched"
    with pytest.raises(Exception, match="signature"):
        Verifier("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(body, headers)
    assert deliveries(loop, hook["id"])[0]["status"] == "delivered"
    assert deliver_due(session, settings, http).delivered == 0  # sent once


def test_a_receiver_that_is_down_gets_the_message_later(
    dispatched: Loop, receiver: Receiver, session: Session, settings: Settings, http: httpx.Client
) -> None:
    loop = dispatched
    hook = add_webhook(loop, receiver.url)
    receiver.answers.extend([503])
    loop.ok("demo-staff", "sign_for")

    first = deliver_due(session, settings, http)
    assert (first.delivered, first.retrying) == (0, 1)
    [waiting] = deliveries(loop, hook["id"])
    assert (waiting["status"], waiting["attempts"], waiting["last_status_code"]) == (
        "pending", 1, 503,
    )  # fmt: skip
    assert waiting["last_error"] == "http_status"
    assert deliver_due(session, settings, http).delivered == 0  # not before its pause

    later = deliver_due(session, settings, http, now=utcnow() + timedelta(minutes=1))
    assert later.delivered == 1
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(receiver.received) == 2
    assert len(ids) == 1  # the same message: the receiver can drop a repeat


def test_a_receiver_that_never_answers_is_given_up_on_and_the_log_says_only_why(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    hook = add_webhook(loop, "http://127.0.0.1:9/nobody-listens")
    loop.ok("demo-staff", "sign_for")
    patient = settings.model_copy(update={"webhook_max_attempts": 2, "webhook_timeout_seconds": 2})
    with webhook_client(patient) as http:
        assert deliver_due(session, patient, http).retrying == 1
        assert deliver_due(session, patient, http, now=utcnow() + timedelta(hours=1)).failed == 1
    [given_up] = deliveries(loop, hook["id"])
    assert (given_up["status"], given_up["attempts"]) == ("failed", 2)
    # A class, not the socket's words ("[Errno 111] Connection refused"): the log must not
    # tell a reader which ports are open inside.
    assert given_up["last_error"] == "unreachable"


def test_only_admins_manage_webhooks_and_types_are_checked(loop: Loop) -> None:
    staff = loop.client.post(
        "/api/v1/admin/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:1/"},
        headers=loop.as_user("demo-dispatcher"),
    )
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")
    anonymous = loop.client.post(
        "/api/v1/admin/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:1/"},
        headers={"Authorization": ""},
    )
    assert anonymous.status_code == 401
    bad = loop.client.post(
        "/api/v1/admin/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:1/", "event_types": ["case.exploded"]},
        headers=loop.as_user("demo-admin"),
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_failed")
    hook = add_webhook(loop, "http://127.0.0.1:1/")
    gone = loop.client.delete(
        f"/api/v1/admin/webhooks/{hook['id']}", headers=loop.as_user("demo-admin")
    )
    assert gone.status_code == 204
    loop.ok("demo-dispatcher", "register")
    assert deliveries(loop, hook["id"]) == []  # a stopped webhook is sent nothing new


#: Ways to write an address inside: loopback in its decimal, short, octal and hex forms, a
#: name for it, IPv6 loopback and IPv4 carried in IPv6 (mapped, NAT64, 6to4), cloud
#: metadata (link-local), private ranges, unspecified, shared (CGNAT), unique-local,
#: multicast.
INSIDE = [
    "http://127.0.0.1:8080/x", "http://2130706433/", "http://127.1/", "http://0177.0.0.1/",
    "http://0x7f.0.0.1/", "http://localhost:8000/hook", "http://[::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/",
    "http://169.254.169.254/latest/meta-data/", "https://10.0.0.5/", "http://172.16.0.1/",
    "http://192.168.1.1/", "http://0.0.0.0:22/", "http://[::]/", "http://100.64.0.1/",
    "http://[fe80::1]/", "http://[fc00::1]/", "http://224.0.0.1/", "http://[::ffff:10.0.0.1]/",
]  # fmt: skip


def test_webhooks_to_inside_addresses_are_refused_when_added(
    admin_without_allow_list: TestClient,
) -> None:
    client = admin_without_allow_list
    answers = {
        url: client.post("/api/v1/admin/webhooks", json={"name": "探测", "url": url})
        for url in INSIDE
    }
    accepted = {url: a.status_code for url, a in answers.items() if a.status_code != 422}
    assert accepted == {}
    assert {a.json()["code"] for a in answers.values()} == {"webhook_address_refused"}
    assert client.get("/api/v1/admin/webhooks").json() == []  # nothing stored


def test_a_name_that_leads_inside_is_refused_when_connecting(
    loop: Loop, receiver: Receiver, session: Session, unallowed: Settings
) -> None:
    """Registered while loopback was allowed: what counts is where the connection goes at
    delivery, so a name that resolves inside only later (DNS rebinding) gains nothing."""
    hosts = ("localhost", "127.1", "2130706433", "127.0.0.1", "[::1]", "[::ffff:127.0.0.1]")
    hooks = [add_webhook(loop, f"http://{host}:{receiver.port}/roadchief") for host in hosts]
    # Stored as written (the API normalises "127.1" to 127.0.0.1): the resolver reads them.
    for hook, host in zip(hooks[1:3], hosts[1:3], strict=True):
        session.execute(update(Webhook).where(Webhook.id == hook["id"])
                        .values(url=f"http://{host}:{receiver.port}/roadchief"))  # fmt: skip
    loop.ok("demo-dispatcher", "register")
    with webhook_client(unallowed) as http:
        run = deliver_due(session, unallowed, http)
    assert run.retrying == len(hooks)
    assert receiver.received == []  # not one byte reached the receiver
    for hook in hooks:
        [refused] = deliveries(loop, hook["id"])
        assert (refused["status"], refused["last_error"]) == ("pending", "address_refused")


def test_a_receiver_that_drips_its_answer_is_cut_off(
    loop: Loop, receiver: Receiver, session: Session, settings: Settings
) -> None:
    """A byte every 0.2 s keeps any read timeout happy; the attempt's cap ends it."""

    def drip(handler: Handler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: yes\r\n\r\n":
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            receiver.sent += 1
            time.sleep(0.2)

    receiver.misbehave = drip
    hook = add_webhook(loop, receiver.url)
    loop.ok("demo-dispatcher", "register")
    capped = settings.model_copy(update={"webhook_timeout_seconds": 1})
    with webhook_client(capped) as http:
        assert deliver_due(session, capped, http).retrying == 1
    [cut_off] = deliveries(loop, hook["id"])
    assert (cut_off["status"], cut_off["last_error"]) == ("pending", "timed_out")
    assert cut_off["last_status_code"] is None


def test_a_huge_answer_is_not_read(
    loop: Loop, receiver: Receiver, session: Session, settings: Settings, http: httpx.Client
) -> None:
    """A receiver answering 128 MiB: the status line and headers are all that is read."""
    size, chunk = 128 * 1024 * 1024, b"\0" * 65536

    def flood(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        while receiver.sent < size:
            handler.wfile.write(chunk)
            receiver.sent += len(chunk)

    receiver.misbehave = flood
    hook = add_webhook(loop, receiver.url)
    loop.ok("demo-dispatcher", "register")
    assert deliver_due(session, settings, http).delivered == 1
    assert receiver.done.wait(30)
    # What the sockets' buffers took before the client hung up, no more.
    assert receiver.sent < 32 * 1024 * 1024
    assert deliveries(loop, hook["id"])[0]["status"] == "delivered"


def test_a_stuck_delivery_does_not_hold_up_the_deadline_sweep(
    live_database: Database, settings: Settings, receiver: Receiver
) -> None:
    """The service's own timer, on a real server: while a receiver drips its answer, a
    task's deadline passing is still marked overdue at once."""
    release = threading.Event()

    def drip(handler: Handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        handler.wfile.flush()
        while not release.wait(0.2):
            handler.wfile.write(b"X")
            handler.wfile.flush()

    receiver.misbehave = drip
    with live_database.sessions() as db:
        spot = on_segment(db, chief="demo-chief-3", skip=3)
    running = settings.model_copy(
        update={"background_interval_seconds": 0.2, "webhook_timeout_seconds": 60}
    )
    try:
        with serve(create_app(running, live_database)) as base, httpx.Client(base_url=base) as c:
            admin = signed_in(base, "demo-admin")
            hook = c.post("/api/v1/admin/webhooks", headers=admin,
                          json={"name": "慢接收方", "url": receiver.url}).json()  # fmt: skip
            report = c.post(
                "/api/v1/reports", headers=signed_in(base, "demo-chief-3"),
                json={"category_code": "civility.public_behaviour", "description": "乱扔垃圾",
                      "lon": spot.lon, "lat": spot.lat, "device_time": utcnow().isoformat()},
            )  # fmt: skip
            assert report.status_code == 201, report.text
            number = report.json()["case_number"]
            dispatcher = signed_in(base, "demo-dispatcher")
            for action, body in (
                ("register", {}),
                ("dispatch", {"units": ["urban-management"], "reason": "城管"}),
            ):
                version = c.get(f"/api/v1/cases/{number}", headers=dispatcher).json()["version"]
                step = c.post(f"/api/v1/cases/{number}/actions/{action}", json=body,
                              headers={**dispatcher, "If-Match": f'"{version}"'})  # fmt: skip
                assert step.status_code == 200, step.text
            for _ in range(50):  # the first delivery starts within a round, and drips
                if receiver.received:
                    break
                time.sleep(0.2)
            assert receiver.received, "no delivery started"
            with live_database.sessions() as db:
                case_id = db.scalar(select(Case.id).where(Case.number == number))
                past = utcnow() - timedelta(minutes=1)
                db.execute(
                    update(CaseTask).where(CaseTask.case_id == case_id)
                    .values(handle_due_at=past, next_alarm_at=past)
                )  # fmt: skip
                db.commit()
            kinds: list[str] = []
            for _ in range(50):  # up to 10 s: the sweep runs every 0.2 s
                history = c.get(f"/api/v1/cases/{number}", headers=dispatcher).json()["history"]
                kinds = [e["kind"] for e in history]
                if "overdue" in kinds:
                    break
                time.sleep(0.2)
            assert "overdue" in kinds
            assert not receiver.done.is_set()  # the delivery was still stuck meanwhile
            stuck = c.get(f"/api/v1/admin/webhooks/{hook['id']}/deliveries", headers=admin)
            assert stuck.json()["items"][-1]["status"] == "pending"
            release.set()
            c.delete(f"/api/v1/admin/webhooks/{hook['id']}", headers=admin)  # shared database
    finally:
        release.set()
