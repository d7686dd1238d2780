"""The console's stories: a browser (cookies, forms, CSRF tokens) on the test's app."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.cases import dispatched, loop  # noqa: F401  (the stories' case)
from tests.support.console import Browser


@pytest.fixture
def browser(app: FastAPI) -> Iterator[Callable[[], Browser]]:
    clients: list[TestClient] = []

    def make() -> Browser:
        client = TestClient(
            app, base_url="https://testserver", follow_redirects=False,
            raise_server_exceptions=False,
        )  # fmt: skip
        clients.append(client)
        return Browser(client)

    yield make
    for client in clients:
        client.close()
