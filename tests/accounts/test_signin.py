"""A road chief signs in on the phone, refreshes, signs out; thieves and guessers do not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts.models import LoginThrottle, RefreshToken, User
from app.accounts.passwords import verify_password
from app.accounts.service import principal_for_user, user_by_username
from app.accounts.tokens import issue_access_token
from app.audit.models import AuditEvent, AuditEventType
from app.core.database import Database, utcnow
from app.core.deps import get_db_session
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from tests.support import Headers
from tests.support.actors import TOKEN_URL, bearer, refresh, sign_in


def events(session: Session, event: AuditEventType) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def test_chief_signs_in_and_the_phone_learns_who_they_are(anonymous: TestClient) -> None:
    response = sign_in(anonymous, "demo-chief-3")
    assert response.status_code == 200
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 15 * 60
    me = anonymous.get("/api/v1/me", headers=bearer(pair)).json()
    assert me["kind"] == "user"
    assert me["username"] == "demo-chief-3"
    assert me["roles"] == ["road_chief"]
    assert me["chief_level"] == 3
    assert [j["code"] for j in me["jurisdictions"]] == ["410199001001"]
    segments = anonymous.get("/api/v1/me/segments", headers=bearer(pair)).json()["items"]
    assert segments, "the level-3 chief owns the lanes of 文博社区"
    assert me["segment_count"] == len(segments)
    assert {s["level"] for s in segments} == {3}
    assert {s["street_code"] for s in segments} == {"410199001"}
    assert "territory:read" in me["permissions"]
    assert "users:manage" not in me["permissions"]


def test_sign_in_is_audited(anonymous: TestClient, session: Session) -> None:
    assert sign_in(anonymous, "demo-chief-2").status_code == 200
    [event] = events(session, AuditEventType.LOGIN_SUCCEEDED)
    assert event.username == "demo-chief-2"
    assert event.client_address == "testclient"


@pytest.mark.parametrize("username", ["demo-chief-2", "nobody-by-this-name"])
def test_wrong_password_and_unknown_name_get_the_same_answer(
    anonymous: TestClient, session: Session, username: str
) -> None:
    response = sign_in(anonymous, username, "Wrong#password1")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["error"] == "invalid_grant"  # what OAuth2 client libraries look for
    assert response.headers["content-type"] == "application/problem+json"
    [event] = events(session, AuditEventType.LOGIN_FAILED)
    assert event.username == username


def test_a_token_accepted_before_is_refused_once_it_expires(
    anonymous: TestClient,
    as_user: Callable[[str], dict[str, str]],
    settings: Settings,
    time_machine: Any,
) -> None:
    """The process remembers the tokens it verified (their signature is not checked at
    every request), but not past their expiry."""
    time_machine.move_to(utcnow(), tick=False)
    chief = as_user("demo-chief-2")
    assert anonymous.get("/api/v1/me", headers=chief).status_code == 200
    time_machine.shift(timedelta(minutes=settings.access_token_minutes, seconds=-1))
    assert anonymous.get("/api/v1/me", headers=chief).status_code == 200  # not yet expired
    time_machine.shift(timedelta(seconds=10))
    refused = anonymous.get("/api/v1/me", headers=chief)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_expired")


def test_no_token_malformed_token_and_expired_token(
    anonymous: TestClient, session: Session, settings: Settings
) -> None:
    none = anonymous.get("/api/v1/me")
    assert none.status_code == 401
    assert none.json()["code"] == "not_authenticated"
    assert none.headers["www-authenticate"].startswith("Bearer")

    garbage = anonymous.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.json()["code"] == "token_invalid"

    user = user_by_username(session, "demo-chief-2")
    long_ago = utcnow() - timedelta(hours=1)
    expired = issue_access_token(principal_for_user(user), long_ago, settings)
    response = anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"  # the app refreshes on this code

    forged_settings = Settings(
        **{**settings.model_dump(), "secret_key": "another-key-of-enough-length-0123456789"}
    )
    forged = issue_access_token(principal_for_user(user), utcnow(), forged_settings)
    response = anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.json()["code"] == "token_invalid"


def test_refresh_rotates_and_a_replayed_token_kills_the_family(
    anonymous: TestClient, session: Session
) -> None:
    first = sign_in(anonymous, "demo-patroller").json()
    second = refresh(anonymous, first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    third = refresh(anonymous, second["refresh_token"]).json()

    # A thief replays the first token long after it was rotated.
    session.execute(update(RefreshToken).values(used_at=utcnow() - timedelta(minutes=5)))
    replay = refresh(anonymous, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["code"] == "refresh_token_reused"
    # ... and the legitimate phone's current token died with the family.
    after = refresh(anonymous, third["refresh_token"])
    assert after.status_code == 400
    assert after.json()["code"] == "refresh_token_invalid"
    assert len(events(session, AuditEventType.REFRESH_TOKEN_REUSED)) == 1


def test_a_phone_retrying_a_refresh_whose_answer_was_lost_stays_signed_in(
    anonymous: TestClient, session: Session
) -> None:
    first = sign_in(anonymous, "demo-patroller").json()
    lost = refresh(anonymous, first["refresh_token"]).json()  # the answer never arrived
    retry = refresh(anonymous, first["refresh_token"])
    assert retry.status_code == 200
    current = refresh(anonymous, retry.json()["refresh_token"])
    assert current.status_code == 200
    assert events(session, AuditEventType.REFRESH_TOKEN_REUSED) == []
    [retried] = events(session, AuditEventType.REFRESH_TOKEN_RETRIED)
    assert retried.username == "demo-patroller"
    assert retried.client_address == "testclient"
    # The token in the lost answer never reached the phone: if it ever shows up, someone
    # else has it, and the sign-in ends.
    again = refresh(anonymous, lost["refresh_token"])
    assert (again.status_code, again.json()["code"]) == (400, "refresh_token_reused")
    assert refresh(anonymous, current.json()["refresh_token"]).status_code == 400
    assert len(events(session, AuditEventType.REFRESH_TOKEN_REUSED)) == 1


def test_unknown_and_expired_refresh_tokens(anonymous: TestClient, session: Session) -> None:
    unknown = refresh(anonymous, "made-up")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "refresh_token_invalid")
    pair = sign_in(anonymous, "demo-patroller").json()
    session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = refresh(anonymous, pair["refresh_token"])
    assert (expired.status_code, expired.json()["code"]) == (400, "refresh_token_expired")


def test_every_refused_grant_is_400_invalid_grant_as_oauth_says(
    anonymous: TestClient, client: TestClient, session: Session
) -> None:
    """RFC 6749 §5.2: a refresh token that is unknown, expired, revoked or reused, a wrong
    password and a disabled account are each `400` with `error: invalid_grant` and an ASCII
    `error_description`; the problem's stable `code` stays beside them."""

    def refused(answer: Any, code: str) -> None:
        body = answer.json()
        assert (answer.status_code, body["code"], body["error"]) == (400, code, "invalid_grant")
        assert body["error_description"].isascii()  # RFC 6749 allows ASCII only
        assert (body["status"], body["type"]) == (400, f"/problems/{code}")  # and RFC 9457

    refused(refresh(anonymous, "made-up"), "refresh_token_invalid")
    first = sign_in(anonymous, "demo-patroller").json()
    second = refresh(anonymous, first["refresh_token"]).json()
    session.execute(update(RefreshToken).values(used_at=utcnow() - timedelta(minutes=5)))
    refused(refresh(anonymous, first["refresh_token"]), "refresh_token_reused")
    refused(refresh(anonymous, second["refresh_token"]), "refresh_token_invalid")  # revoked
    pair = sign_in(anonymous, "demo-patroller").json()
    session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    refused(refresh(anonymous, pair["refresh_token"]), "refresh_token_expired")
    refused(sign_in(anonymous, "demo-patroller", "Wrong#password1"), "invalid_credentials")

    live = sign_in(anonymous, "demo-patroller").json()
    user_id = user_by_username(session, "demo-patroller").id
    assert client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False}).is_success
    refused(sign_in(anonymous, "demo-patroller"), "account_disabled")
    refused(refresh(anonymous, live["refresh_token"]), "refresh_token_invalid")
    # A bearer token is not a grant: its refusals stay 401.
    me = anonymous.get("/api/v1/me", headers=bearer(live))
    assert (me.status_code, me.json()["code"]) == (401, "account_disabled")


def test_logout_ends_this_sign_in_only(anonymous: TestClient, session: Session) -> None:
    phone = sign_in(anonymous, "demo-chief-2").json()
    web = sign_in(anonymous, "demo-chief-2").json()
    response = anonymous.post("/api/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
    assert response.status_code == 204
    assert refresh(anonymous, phone["refresh_token"]).status_code == 400
    assert refresh(anonymous, web["refresh_token"]).status_code == 200
    assert len(events(session, AuditEventType.LOGOUT)) == 1
    # Logging out twice, or with a token nobody knows, is not an error.
    again = anonymous.post("/api/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
    assert again.status_code == 204


def test_changing_my_password_ends_every_other_sign_in(
    anonymous: TestClient, session: Session
) -> None:
    phone = sign_in(anonymous, "demo-chief-2").json()
    web = sign_in(anonymous, "demo-chief-2").json()
    wrong = anonymous.post(
        "/api/v1/me/password",
        headers=bearer(web),
        json={"current_password": "nope", "new_password": "Another#Pass99"},
    )
    assert (wrong.status_code, wrong.json()["code"]) == (403, "current_password_incorrect")
    weak = anonymous.post(
        "/api/v1/me/password",
        headers=bearer(web),
        json={"current_password": DEMO_PASSWORD, "new_password": "short"},
    )
    assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
    assert refresh(anonymous, phone["refresh_token"]).status_code == 200  # nothing changed yet

    changed = anonymous.post(
        "/api/v1/me/password",
        headers=bearer(web),
        json={"current_password": DEMO_PASSWORD, "new_password": "Another#Pass99"},
    )
    assert changed.status_code == 200
    assert refresh(anonymous, changed.json()["refresh_token"]).status_code == 200
    assert refresh(anonymous, web["refresh_token"]).status_code == 400
    assert sign_in(anonymous, "demo-chief-2").status_code == 400
    assert sign_in(anonymous, "demo-chief-2", "Another#Pass99").status_code == 200
    assert len(events(session, AuditEventType.PASSWORD_CHANGED)) == 1


def test_unsupported_and_incomplete_grants(anonymous: TestClient) -> None:
    wrong = anonymous.post(TOKEN_URL, data={"grant_type": "client_credentials"})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "validation_failed")
    incomplete = anonymous.post(TOKEN_URL, data={"grant_type": "password", "username": "x"})
    assert (incomplete.status_code, incomplete.json()["code"]) == (400, "unsupported_grant_type")


# --- throttling ----------------------------------------------------------------------------


@pytest.fixture
def strict_at(
    settings: Settings, demo_database: Database, session: Session
) -> Iterator[Callable[[str], TestClient]]:
    """Clients at a given address, on settings with small limits: 2 free failures, lock
    at 4 (address: 3/6)."""
    strict_settings = settings.model_copy(
        update={
            "login_free_failures": 2,
            "login_lock_failures": 4,
            "login_address_free_failures": 3,
            "login_address_lock_failures": 6,
        }
    )
    app = create_app(strict_settings, demo_database)
    app.dependency_overrides[get_db_session] = lambda: session
    with ExitStack() as stack:

        def at(address: str) -> TestClient:
            return stack.enter_context(
                TestClient(app, raise_server_exceptions=False, client=(address, 50000))
            )

        yield at


@pytest.fixture
def strict(strict_at: Callable[[str], TestClient]) -> TestClient:
    return strict_at("testclient")


def wait_out_delays(session: Session, seconds: int = 120) -> None:
    """Pretend the client waited: move every failure back in time."""
    for row in session.scalars(select(LoginThrottle)):
        if row.last_failure_at is not None:
            row.last_failure_at -= timedelta(seconds=seconds)
    session.flush()


def test_repeated_failures_are_slowed_then_locked(strict: TestClient, session: Session) -> None:
    bad = "Wrong#password1"
    assert sign_in(strict, "demo-chief-2", bad).json()["code"] == "invalid_credentials"
    assert sign_in(strict, "demo-chief-2", bad).json()["code"] == "invalid_credentials"
    slowed = sign_in(strict, "demo-chief-2", DEMO_PASSWORD)  # even the right password waits
    assert slowed.status_code == 429
    assert slowed.json()["code"] == "login_throttled"
    assert int(slowed.headers["retry-after"]) >= 1
    assert slowed.json()["retry_after"] == int(slowed.headers["retry-after"])

    wait_out_delays(session)
    assert sign_in(strict, "demo-chief-2", bad).status_code == 400
    wait_out_delays(session)
    assert sign_in(strict, "demo-chief-2", bad).status_code == 400  # the 4th: locked now
    wait_out_delays(session)
    locked = sign_in(strict, "demo-chief-2", DEMO_PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert 60 < int(locked.headers["retry-after"]) <= 15 * 60
    assert events(session, AuditEventType.LOGIN_THROTTLED)

    # The lock runs out; the right password then works and clears the count.
    for row in session.scalars(select(LoginThrottle)):
        row.locked_until = utcnow() - timedelta(seconds=1)
        row.last_failure_at -= timedelta(hours=1)
    session.flush()
    assert sign_in(strict, "demo-chief-2", DEMO_PASSWORD).status_code == 200
    assert (
        session.scalar(select(LoginThrottle).where(LoginThrottle.key == "account:demo-chief-2"))
        is None
    )


def test_one_address_guessing_many_names_is_slowed(strict: TestClient, session: Session) -> None:
    for name in ("guess-a", "guess-b", "guess-c"):
        assert sign_in(strict, name, "Wrong#password1").status_code == 400
    # A fourth name from the same address: its own count is zero, the address's is not.
    response = sign_in(strict, "demo-chief-3", DEMO_PASSWORD)
    assert (response.status_code, response.json()["code"]) == (429, "login_throttled")


def test_disabled_account_cannot_sign_in_and_its_sessions_end(
    client: TestClient, anonymous: TestClient, session: Session
) -> None:
    pair = sign_in(anonymous, "demo-patroller").json()
    user_id = user_by_username(session, "demo-patroller").id
    disabled = client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False})
    assert disabled.status_code == 200
    assert refresh(anonymous, pair["refresh_token"]).status_code == 400
    refused = sign_in(anonymous, "demo-patroller")
    assert (refused.status_code, refused.json()["code"]) == (400, "account_disabled")
    assert session.get(User, user_id).is_active is False  # type: ignore[union-attr]


def test_a_stranger_failing_ten_times_cannot_hold_the_dispatcher_out(
    strict_at: Callable[[str], TestClient], session: Session
) -> None:
    office, stranger, new_phone = (
        strict_at("10.1.2.3"),
        strict_at("203.0.113.9"),
        strict_at("198.51.100.7"),
    )
    assert sign_in(office, "demo-dispatcher").status_code == 200  # the usual desk
    bad = "Wrong#password1"
    for attempt in range(4):  # the lock count of the strict settings
        if attempt:
            wait_out_delays(session)
        assert sign_in(stranger, "demo-dispatcher", bad).status_code == 400
    locked = sign_in(stranger, "demo-dispatcher", DEMO_PASSWORD)
    assert (locked.status_code, locked.json()["code"]) == (429, "login_locked")

    # From an address the account never signed in from: slowed (the stranger's failures
    # count for the account everywhere), not locked.
    slowed = sign_in(new_phone, "demo-dispatcher")
    assert (slowed.status_code, slowed.json()["code"]) == (429, "login_throttled")
    # The dispatcher at the usual desk: neither locked nor slowed.
    assert sign_in(office, "demo-dispatcher").status_code == 200
    # The stranger's address stays locked for this account.
    assert sign_in(stranger, "demo-dispatcher", DEMO_PASSWORD).json()["code"] == "login_locked"


def test_a_stolen_access_token_cannot_guess_the_password_by_changing_it(
    strict_at: Callable[[str], TestClient], session: Session, settings: Settings, as_user: Headers
) -> None:
    thief = strict_at("203.0.113.9")
    stolen = as_user("demo-chief-2")

    def change(current: str) -> Any:
        return thief.post(
            "/api/v1/me/password",
            headers=stolen,
            json={"current_password": current, "new_password": "Thief#Owns2026"},
        )

    guesses = ["Jinhe@2025", "Jinhe@2024"]
    for guess in guesses:
        assert change(guess).json()["code"] == "current_password_incorrect"
    slowed = change(DEMO_PASSWORD)  # even the right one waits now
    assert (slowed.status_code, slowed.json()["code"]) == (429, "login_throttled")
    assert int(slowed.headers["retry-after"]) >= 1
    for guess in ["Jinhe@2023", "Jinhe@2022"]:
        wait_out_delays(session)
        assert change(guess).status_code == 403
    wait_out_delays(session)
    locked = change(DEMO_PASSWORD)
    assert (locked.status_code, locked.json()["code"]) == (429, "login_locked")
    assert "error" not in locked.json()  # OAuth2's field belongs to the token endpoint only

    user = user_by_username(session, "demo-chief-2")
    assert verify_password(DEMO_PASSWORD, user.password_hash, settings)[0]  # unchanged
    failed = events(session, AuditEventType.PASSWORD_CHANGE_FAILED)
    assert len(failed) == 4
    assert {(e.actor_user_id, e.subject_user_id) for e in failed} == {(user.id, user.id)}
    assert {e.client_address for e in failed} == {"203.0.113.9"}
    throttled = events(session, AuditEventType.LOGIN_THROTTLED)
    assert {e.detail["during"] for e in throttled} == {"password_change"}
    assert len(throttled) == 2
    # One budget with sign-in: the thief's address cannot switch to guessing there.
    assert sign_in(thief, "demo-chief-2").json()["code"] == "login_locked"


def test_a_thief_replaying_a_refresh_token_in_the_retry_window_ends_the_session(
    anonymous: TestClient, session: Session
) -> None:
    phone = sign_in(anonymous, "demo-patroller").json()
    copied = phone["refresh_token"]  # the thief's copy
    phone = refresh(anonymous, phone["refresh_token"]).json()
    # Within the retry window the thief's replay looks like a phone that lost an answer.
    thief = refresh(anonymous, copied)
    assert thief.status_code == 200
    [retried] = events(session, AuditEventType.REFRESH_TOKEN_RETRIED)
    assert retried.detail["family"]

    # The phone's own token died with the retry; it comes back with it: that is reuse.
    back = refresh(anonymous, phone["refresh_token"])
    assert (back.status_code, back.json()["code"]) == (400, "refresh_token_reused")
    [reused] = events(session, AuditEventType.REFRESH_TOKEN_REUSED)
    assert reused.detail == {"family": retried.detail["family"], "token_state": "revoked"}
    assert reused.username == "demo-patroller"
    # The thief's pair is dead too: the refresh token, and the access token at once.
    stolen = thief.json()
    assert refresh(anonymous, stolen["refresh_token"]).status_code == 400
    me = anonymous.get("/api/v1/me", headers=bearer(stolen))
    assert (me.status_code, me.json()["code"]) == (401, "token_expired")
    family = session.scalars(
        select(RefreshToken).where(RefreshToken.family == retried.detail["family"])
    ).all()
    assert all(t.revoked_at is not None for t in family)
    # Presented once more, a token of the dead sign-in is only invalid: no new event.
    assert refresh(anonymous, phone["refresh_token"]).json()["code"] == "refresh_token_invalid"
    assert len(events(session, AuditEventType.REFRESH_TOKEN_REUSED)) == 1
    assert sign_in(anonymous, "demo-patroller").status_code == 200  # the owner signs in again


def test_the_longest_typed_name_is_counted_like_any_other(anonymous: TestClient) -> None:
    name = "n" * 100  # the form's limit; its throttle keys once overflowed on PostgreSQL
    for _ in range(2):
        response = sign_in(anonymous, name, "Wrong#password1")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")
