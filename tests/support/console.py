"""A browser on the console (cookies, forms, CSRF tokens); the `browser` fixture in
tests/console/conftest.py makes them on the test's app."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

from app.demo.users import DEMO_PASSWORD

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
