"""The people of the stories: signing in by password as the phone does, refreshing, the
bearer headers of a token pair, a supervisor of the next street, and the routes anyone may
call without signing in. (Signed-in headers without the password round trip come from the
`as_user` fixture of tests/conftest.py.)"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.demo.users import DEMO_PASSWORD
from app.settings import Settings

TOKEN_URL = "/api/v1/auth/token"


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> Any:
    return client.post(
        TOKEN_URL, data={"grant_type": "password", "username": username, "password": password}
    )


def refresh(client: TestClient, token: str) -> Any:
    return client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": token})


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def next_street_supervisor(session: Session, settings: Settings) -> str:
    create_user(
        session, settings, None,
        UserCreate(
            username="supervisor-410199002", display_name="邻街监督员",
            password="Watch@2026-long", roles=[Role.SUPERVISOR],
            jurisdiction_codes=["410199002"],
        ),
    )  # fmt: skip
    return "supervisor-410199002"


PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # operators by address or its own token, not by sign-in
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/logout"),
}
