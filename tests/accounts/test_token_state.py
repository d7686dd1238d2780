"""An admin's decision ends the access tokens it contradicts within seconds, everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.service import user_by_username
from app.accounts.token_state import TokenStates
from app.core.database import Database
from app.core.deps import get_db_session
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from tests.support import Headers
from tests.support.actors import bearer, sign_in

USERS = "/api/v1/admin/users"
ADMIN_C = {
    "username": "admin-c",
    "display_name": "后门管理员",
    "password": "Admin#Backdoor2026",
    "roles": ["admin"],
    "jurisdiction_codes": [],
}


class Clock:
    """The token-state cache's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def other_process(
    settings: Settings, demo_database: Database, session: Session, clock: Clock
) -> Iterator[TestClient]:
    """A client of a second server process on the same database, whose token-state cache
    (5 s, the default) runs on a clock the test moves."""
    app = create_app(settings, demo_database)
    app.state.token_states = TokenStates(5, timer=clock)
    app.dependency_overrides[get_db_session] = lambda: session
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def uncached(settings: Settings, demo_database: Database, session: Session) -> Iterator[TestClient]:
    """A client of an app that reads the token state on every request."""
    app = create_app(settings.model_copy(update={"token_state_cache_seconds": 0}), demo_database)
    app.dependency_overrides[get_db_session] = lambda: session
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def new_admin(client: TestClient, username: str = "admin-b") -> int:
    response = client.post(
        USERS,
        json={
            "username": username,
            "display_name": "第二位管理员",
            "password": "Admin#Second2026",
            "roles": ["admin"],
            "jurisdiction_codes": [],
        },
    )
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def test_a_disabled_admin_cannot_create_an_admin_with_the_token_they_still_hold(
    client: TestClient,
    anonymous: TestClient,
    other_process: TestClient,
    clock: Clock,
    as_user: Headers,
    session: Session,
) -> None:
    admin_b = new_admin(client)
    token = as_user("admin-b")  # signed in before being disabled; valid for 15 minutes
    assert other_process.get(USERS, headers=token).status_code == 200

    # Another admin disables admin-b through this process: the decision is stored, and
    # a process that has not just read admin-b's state refuses the token at once.
    assert client.patch(f"{USERS}/{admin_b}", json={"is_active": False}).status_code == 200
    assert anonymous.get(USERS, headers=token).json()["code"] == "account_disabled"
    # The process that served admin-b a moment ago trusts what it read for 5 s at most ...
    clock.advance(4.9)
    assert other_process.get(USERS, headers=token).status_code == 200
    clock.advance(0.2)
    # ... then the token speaks for no one there either: no new admin, no personal data.
    before = user_count(session)
    created = other_process.post(USERS, headers=token, json=ADMIN_C)
    assert (created.status_code, created.json()["code"]) == (401, "account_disabled")
    assert user_count(session) == before
    listed = other_process.get(USERS, headers=token)
    assert (listed.status_code, listed.json()["code"]) == (401, "account_disabled")


def change_roles(client: TestClient, user_id: int, headers: dict[str, str]) -> Any:
    body = {"roles": ["dispatcher"], "jurisdiction_codes": ["410199"]}
    return client.patch(f"{USERS}/{user_id}", json=body, headers=headers)


def change_scope(client: TestClient, user_id: int, headers: dict[str, str]) -> Any:
    body = {"jurisdiction_codes": ["410199003"]}
    return client.patch(f"{USERS}/{user_id}", json=body, headers=headers)


def reset_password(client: TestClient, user_id: int, headers: dict[str, str]) -> Any:
    body = {"new_password": "Reset#Pass2026"}
    return client.post(f"{USERS}/{user_id}/password", json=body, headers=headers)


@pytest.mark.parametrize(
    ("username", "decide"),
    [
        ("demo-admin", change_roles),  # demoted
        ("demo-chief-2", change_scope),  # moved to another street
        ("demo-patroller", reset_password),
    ],
)
def test_an_admins_decision_ends_the_older_access_tokens(
    client: TestClient,
    uncached: TestClient,
    as_user: Headers,
    session: Session,
    username: str,
    decide: Callable[[TestClient, int, dict[str, str]], Any],
) -> None:
    user_id = user_by_username(session, username).id
    old = as_user(username)
    assert uncached.get("/api/v1/me", headers=old).status_code == 200
    new_admin(client)  # an admin cannot demote themself: another one decides
    assert decide(client, user_id, as_user("admin-b")).status_code in (200, 204)

    refused = uncached.get("/api/v1/me", headers=old)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_expired")
    assert refused.headers["www-authenticate"].startswith("Bearer")
    # A token issued afterwards (a refresh) carries the new rights and works.
    assert uncached.get("/api/v1/me", headers=as_user(username)).status_code == 200


def test_the_demoted_admin_keeps_no_admin_power(
    client: TestClient, uncached: TestClient, as_user: Headers, session: Session
) -> None:
    admin_b = new_admin(client)
    old = as_user("admin-b")
    assert change_roles(client, admin_b, {}).status_code == 200
    before = user_count(session)
    attempt = uncached.post(USERS, headers=old, json=ADMIN_C)
    assert (attempt.status_code, attempt.json()["code"]) == (401, "token_expired")
    fresh = uncached.post(USERS, headers=as_user("admin-b"), json=ADMIN_C)  # after a refresh
    assert (fresh.status_code, fresh.json()["code"]) == (403, "forbidden")
    assert user_count(session) == before


def test_changing_my_password_ends_my_other_access_tokens_but_not_the_new_one(
    uncached: TestClient,
) -> None:
    laptop = sign_in(uncached, "demo-chief-3").json()
    phone = sign_in(uncached, "demo-chief-3").json()
    changed = uncached.post(
        "/api/v1/me/password",
        headers=bearer(phone),
        json={"current_password": DEMO_PASSWORD, "new_password": "Another#Pass99"},
    )
    assert changed.status_code == 200
    assert uncached.get("/api/v1/me", headers=bearer(changed.json())).status_code == 200
    for old in (laptop, phone):
        refused = uncached.get("/api/v1/me", headers=bearer(old))
        assert (refused.status_code, refused.json()["code"]) == (401, "token_expired")


def test_a_re_enabled_user_needs_a_new_sign_in(
    client: TestClient, uncached: TestClient, as_user: Headers, session: Session
) -> None:
    user_id = user_by_username(session, "demo-supervisor").id
    old = as_user("demo-supervisor")
    assert client.patch(f"{USERS}/{user_id}", json={"is_active": False}).status_code == 200
    assert uncached.get("/api/v1/me", headers=old).json()["code"] == "account_disabled"
    assert client.patch(f"{USERS}/{user_id}", json={"is_active": True}).status_code == 200
    assert uncached.get("/api/v1/me", headers=old).json()["code"] == "token_expired"
    assert uncached.get("/api/v1/me", headers=as_user("demo-supervisor")).status_code == 200


def test_profile_edits_and_api_keys_are_not_affected(
    client: TestClient, uncached: TestClient, as_user: Headers, session: Session
) -> None:
    user_id = user_by_username(session, "demo-patroller").id
    token = as_user("demo-patroller")
    assert client.patch(f"{USERS}/{user_id}", json={"phone": "13800000000"}).status_code == 200
    assert uncached.get("/api/v1/me", headers=token).status_code == 200
    key = client.post(
        "/api/v1/admin/api-keys", json={"name": "大屏", "jurisdiction_codes": ["410199"]}
    ).json()["key"]
    assert uncached.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 200
