"""A maintained GeoReport client from PyPI (`georeport`) reads a real server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from georeport import GeoReport

from tests.support.open311 import NOW, post_request
from tests.support.places import Spot

pytestmark = pytest.mark.time_machine(NOW, tick=True)


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """The app (on the test's session) served by uvicorn on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/open311/v2"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_client_reads_services_definitions_and_requests(
    server: str,
    anonymous: TestClient,
    spot: Spot,
    make_key: Callable[..., str],
    fmt: str,
) -> None:
    number = post_request(anonymous, make_key(), spot).json()[0]["service_request_id"]
    client = GeoReport(server, jurisdiction="410199", output_format=fmt)
    services = client.get_service_list()
    assert "roads.manhole" in {s["service_code"] for s in services}
    definition = client.get_service_definition("roads.manhole")
    assert definition["service_code"] == "roads.manhole"
    requests = client.get_service_requests(service_code="roads.manhole", status="open")
    requests = requests if isinstance(requests, list) else [requests]  # xmltodict: one → dict
    assert number in {r["service_request_id"] for r in requests}
    one = client.get_service_request(number)
    assert one["service_request_id"] == number
    assert one["status"] == "open"
