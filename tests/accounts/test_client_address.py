"""The client address that sign-in limits and the audit log rely on cannot be forged:
X-Forwarded-For is believed only from a configured proxy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditEventType
from app.core.database import Database
from app.core.deps import get_db_session
from app.main import create_app
from app.settings import Settings
from tests.support.actors import TOKEN_URL
from tests.support.databases import TEST_SECRET_KEY

FORGED = "203.0.113.9"


def failed_sign_in_addresses(session: Session) -> list[str | None]:
    return list(
        session.scalars(
            select(AuditEvent.client_address)
            .where(AuditEvent.event == AuditEventType.LOGIN_FAILED)
            .order_by(AuditEvent.id)
        )
    )


def guess(client: TestClient | httpx.Client) -> None:
    response = client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "nobody", "password": "Wrong#pass1"},
        headers={"X-Forwarded-For": FORGED},
    )
    assert response.status_code == 400


def client_at(
    settings: Settings, database: Database, session: Session, address: str, proxies: list[str]
) -> TestClient:
    app = create_app(settings.model_copy(update={"trusted_proxies": tuple(proxies)}), database)
    app.dependency_overrides[get_db_session] = lambda: session
    return TestClient(app, raise_server_exceptions=False, client=(address, 40000))


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    settings: Settings, demo_database: Database, session: Session
) -> None:
    with client_at(settings, demo_database, session, "127.0.0.1", []) as local:
        guess(local)  # a process on the same host is not a proxy unless configured
    with client_at(settings, demo_database, session, "10.0.0.7", ["10.0.0.5"]) as other:
        guess(other)
    with client_at(settings, demo_database, session, "10.0.0.5", ["10.0.0.0/24"]) as proxy:
        guess(proxy)
    assert failed_sign_in_addresses(session) == ["127.0.0.1", "10.0.0.7", FORGED]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies="10.0.0.5, 192.168.1.0/24").trusted_proxies == (
        "10.0.0.5",
        "192.168.1.0/24",
    )
    assert Settings().trusted_proxies == ()
    for bad in ("*", "proxy.local", "10.0.0.300"):
        with pytest.raises(ValueError, match="not an IP address or network"):
            Settings(trusted_proxies=bad)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def served(tmp_path: Path) -> Iterator[httpx.Client]:
    """`roadchief serve` on a loopback port of its own, on the test's database."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "roadchief"), "serve", "--port", str(port)]
    process = subprocess.Popen(
        command,
        env={
            **{k: v for k, v in os.environ.items() if k != "ROADCHIEF_TRUSTED_PROXIES"},
            "ROADCHIEF_SECRET_KEY": TEST_SECRET_KEY,
            "ROADCHIEF_MEDIA_DIR": str(tmp_path / "media"),
            "ROADCHIEF_BACKGROUND_INTERVAL_SECONDS": "0",
            "ROADCHIEF_LOG_LEVEL": "WARNING",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read().decode() if process.stderr else "")
                time.sleep(0.1)
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_roadchief_serve_believes_no_local_process_unless_told(
    empty_database: Database, tmp_path: Path
) -> None:
    """uvicorn by itself trusts X-Forwarded-For from 127.0.0.1: anything on the host
    (another service, a shell) could then name any address, lock anyone's sign-in and
    write lies into the audit log. (With ROADCHIEF_TRUSTED_PROXIES set, the app believes
    the proxy: the test above.)"""
    with served(tmp_path) as server:
        guess(server)
    with empty_database.sessions() as session:
        assert failed_sign_in_addresses(session) == ["127.0.0.1"]
