"""The console's stories: a browser (cookies, forms, CSRF tokens) on the test's app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.demo.users import DEMO_PASSWORD
from tests.cases.conftest import dispatched, loop  # noqa: F401  (the stories' case)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A browser on the console: keeps cookies (they are Secure: https), reads the CSRF
    token each page carries and sends it back with its forms."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        response = self.client.get(url, **kwargs)  # type: ignore[arg-type]
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, url: str, data: dict[str, object] | None = None, **kwargs: object
    ) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(url, data=form, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
        self.get("/console/login")
        answer = self.post("/console/login", {"username": username, "password": password})
        if answer.status_code == 303:  # as a browser does: the next page, its new token
            self.get(answer.headers["location"])
        return answer


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
