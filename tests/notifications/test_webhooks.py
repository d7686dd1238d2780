"""Case events reach a city's other systems as signed webhooks: through an outbox, so a
receiver that is down gets them later, and a receiver can prove who sent them."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Verifier

from app.core.config import Settings
from app.core.database import utcnow
from app.notifications.delivery import deliver_due
from tests.cases.conftest import Loop


class Receiver:
    """A real HTTP endpoint on loopback: records each request, answers as told (200 once
    the told answers run out)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: deque[int] = deque()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(receiver.answers.popleft() if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/roadchief"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
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
    assert deliver_due(session, settings, http).delivered == 0  # not before its pause

    later = deliver_due(session, settings, http, now=utcnow() + timedelta(minutes=1))
    assert later.delivered == 1
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(receiver.received) == 2
    assert len(ids) == 1  # the same message: the receiver can drop a repeat


def test_a_receiver_that_never_answers_is_given_up_on(
    dispatched: Loop, session: Session, settings: Settings, http: httpx.Client
) -> None:
    loop = dispatched
    hook = add_webhook(loop, "http://127.0.0.1:9/nobody-listens")
    loop.ok("demo-staff", "sign_for")
    patient = settings.model_copy(update={"webhook_max_attempts": 2, "webhook_timeout_seconds": 2})
    assert deliver_due(session, patient, http).retrying == 1
    assert deliver_due(session, patient, http, now=utcnow() + timedelta(hours=1)).failed == 1
    [given_up] = deliveries(loop, hook["id"])
    assert (given_up["status"], given_up["attempts"]) == ("failed", 2)
    assert "ConnectError" in given_up["last_error"]


def test_only_admins_manage_webhooks_and_types_are_checked(loop: Loop) -> None:
    staff = loop.client.post(
        "/api/v1/admin/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:1/"},
        headers=loop.as_user("demo-dispatcher"),
    )
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")
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
