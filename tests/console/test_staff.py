"""Department staff at the console: sign in, see their unit's tasks, sign for, feed back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, user_by_username
from app.accounts.token_state import TokenStates
from app.audit.models import AuditEvent, AuditEventType
from app.core.database import utcnow
from app.settings import Settings
from tests.support import Jpeg
from tests.support.cases import Loop, task_of
from tests.support.console import Browser


def test_anonymous_is_sent_to_sign_in(browser: Callable[[], Browser]) -> None:
    anonymous = browser()
    page = anonymous.get("/console/tasks")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Ftasks"
    htmx = anonymous.get("/console/tasks", headers={"HX-Request": "true"})
    assert (htmx.status_code, htmx.headers["HX-Redirect"]) == (204, page.headers["location"])
    assert anonymous.get("/console/cases/X1").status_code == 303
    login = anonymous.get("/console/login")
    assert login.status_code == 200
    assert "登录路长制工作台" in login.text


def test_sign_in_uses_the_accounts_check_throttle_and_audit(
    browser: Callable[[], Browser], session: Session
) -> None:
    person = browser()
    wrong = person.sign_in("demo-staff", "not-the-password")
    assert wrong.status_code == 400
    assert "用户名或密码错误" in wrong.text
    failed = session.scalars(
        select(AuditEvent).where(AuditEvent.event == AuditEventType.LOGIN_FAILED)
    ).all()
    assert failed
    assert failed[-1].username == "demo-staff"

    right = person.sign_in("demo-staff")
    assert (right.status_code, right.headers["location"]) == (303, "/console/tasks")
    cookies = right.headers.get_list("set-cookie")
    session_cookies = [c for c in cookies if c.startswith("rc_console_")]
    assert {c.split("=")[0] for c in session_cookies} == {
        "rc_console_access",
        "rc_console_refresh",
        "rc_console_csrf",
    }
    for cookie in session_cookies:
        lowered = cookie.lower()
        assert tuple(
            flag for flag in ("secure", "httponly", "samesite=strict") if flag in lowered
        ) == ("secure", "httponly", "samesite=strict")
    assert "Path=/console;" in next(c for c in cookies if c.startswith("rc_console_refresh"))
    assert session.scalars(
        select(AuditEvent).where(AuditEvent.event == AuditEventType.LOGIN_SUCCEEDED)
    ).all()

    out = person.post("/console/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/console/login?flash=signed_out")
    assert person.get("/console/tasks").status_code == 303


def test_staff_sign_for_and_feed_back_through_forms(
    browser: Callable[[], Browser], dispatched: Loop, good_jpeg: Jpeg
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")  # urban-management, the lead
    tasks = staff.get("/console/tasks")
    assert tasks.status_code == 200
    assert dispatched.number in tasks.text
    assert "countdown-green" in tasks.text
    assert "（roads.surface）" in tasks.text  # the category's name beside its code
    assert f'value="{dispatched.number}:{dispatched.version}:urban-management"' in tasks.text

    page = staff.get(f"/console/cases/{dispatched.number}")
    assert page.status_code == 200
    assert 'id="step-sign_for"' in page.text
    assert 'id="step-feed_back"' not in page.text  # not signed for yet: the table says no
    signed = staff.post(
        f"/console/cases/{dispatched.number}/actions/sign_for",
        {"version": dispatched.version},
    )
    assert (signed.status_code, signed.headers["location"]) == (
        303,
        f"/console/cases/{dispatched.number}?flash=done",
    )
    dispatched.version += 1
    case = dispatched.read("demo-dispatcher")
    assert task_of(case, "urban-management")["status"] == "signed"
    assert case["history"][-1]["actor_role"] == "department_staff"

    page = staff.get(f"/console/cases/{dispatched.number}")
    assert 'id="step-feed_back"' in page.text
    assert 'id="step-sign_for"' not in page.text
    fed = staff.post(
        f"/console/cases/{dispatched.number}/actions/feed_back",
        {"version": dispatched.version, "note": "已修补坑洼"},
        files=[("photos", ("after.jpg", good_jpeg(), "image/jpeg"))],
    )
    assert fed.status_code == 303, fed.text
    dispatched.version += 1
    case = dispatched.read("demo-dispatcher")
    assert task_of(case, "urban-management")["status"] == "done"
    assert case["history"][-1]["note"] == "已修补坑洼"
    assert len(case["history"][-1]["photo_ids"]) == 1
    photo_id = case["history"][-1]["photo_ids"][0]
    page = staff.get(f"/console/cases/{dispatched.number}")
    assert f"/console/photos/{photo_id}/thumbnail" in page.text
    thumbnail = staff.get(f"/console/photos/{photo_id}/thumbnail")
    assert (thumbnail.status_code, thumbnail.headers["content-type"]) == (200, "image/jpeg")


def test_a_stale_page_gets_the_conflict_message(
    browser: Callable[[], Browser], dispatched: Loop
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    staff.get(f"/console/cases/{dispatched.number}")
    dispatched.ok("demo-dispatcher", "urge", note="请尽快处置")  # someone else moved it on
    stale = staff.post(
        f"/console/cases/{dispatched.number}/actions/sign_for",
        {"version": dispatched.version - 1},
    )
    assert stale.status_code == 409
    assert "版本冲突" in stale.text
    assert f"第 {dispatched.version} 版" in stale.text  # the page shows the current case
    assert task_of(dispatched.read("demo-dispatcher"), "urban-management")["status"] == "pending"


def test_a_refused_step_shows_the_services_message(
    browser: Callable[[], Browser], dispatched: Loop
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    staff.get(f"/console/cases/{dispatched.number}")
    refused = staff.post(
        f"/console/cases/{dispatched.number}/actions/return",
        {"version": dispatched.version},  # no reason given
    )
    assert refused.status_code == 422
    assert "须填写说明" in refused.text
    assert dispatched.read("demo-dispatcher")["version"] == dispatched.version


def test_another_units_task_is_not_found(
    browser: Callable[[], Browser], dispatched: Loop, session: Session, settings: Settings
) -> None:
    """Staff of another unit, in the next street: the case is not theirs to see or touch."""
    create_user(
        session, settings, None,
        UserCreate(
            username="staff-health-002", display_name="卫生健康委 值班员",
            password="Staff@2026-long", roles=[Role.DEPARTMENT_STAFF], unit_code="health",
            jurisdiction_codes=["410199002"],
        ),
    )  # fmt: skip
    other = browser()
    other.sign_in("staff-health-002", "Staff@2026-long")
    page = other.get(f"/console/cases/{dispatched.number}")
    assert (page.status_code, "案件不存在" in page.text) == (404, True)
    assert dispatched.number not in other.get("/console/tasks").text
    tried = other.post(
        f"/console/cases/{dispatched.number}/actions/sign_for",
        {"version": dispatched.version, "unit_code": "urban-management"},
    )
    assert tried.status_code == 404
    assert dispatched.read("demo-dispatcher")["version"] == dispatched.version


def test_a_post_without_the_csrf_token_is_refused(
    browser: Callable[[], Browser], dispatched: Loop
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    staff.get(f"/console/cases/{dispatched.number}")
    url = f"/console/cases/{dispatched.number}/actions/sign_for"
    for token in ("", "forged" + staff.csrf[6:]):
        refused = staff.client.post(url, data={"version": dispatched.version, "csrf_token": token})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    other = browser()  # another browser's valid token does not fit this browser's cookie
    other.get("/console/login")
    stolen = staff.client.post(url, data={"version": dispatched.version, "csrf_token": other.csrf})
    assert stolen.status_code == 403
    assert dispatched.read("demo-dispatcher")["version"] == dispatched.version
    signed_out = browser()
    signed_out.get("/console/login")
    assert signed_out.post("/console/login", {"username": "demo-staff"}).status_code == 422
    no_token = signed_out.client.post(
        "/console/login", data={"username": "demo-staff", "password": "x"}
    )
    assert no_token.status_code == 403


def test_batch_sign_for(browser: Callable[[], Browser], dispatched: Loop, session: Session) -> None:
    transport_staff = browser()
    transport_staff.sign_in(dispatched.transport, "Staff@2026-long")  # type: ignore[attr-defined]
    staff = browser()
    staff.sign_in("demo-staff")
    staff.get("/console/tasks")
    done = staff.post(
        "/console/tasks/sign-for",
        {"task": [f"{dispatched.number}:{dispatched.version}:urban-management", "NOPE:1:x"]},
    )
    assert done.status_code == 200
    assert done.text.count('class="ok"') == 1
    assert done.text.count('class="refused"') == 1
    assert "案件不存在" in done.text
    case = dispatched.read("demo-dispatcher")
    assert task_of(case, "urban-management")["status"] == "signed"
    assert task_of(case, "transport")["status"] == "pending"  # not theirs to sign for


def test_an_expired_access_token_is_renewed_with_the_refresh_token(
    browser: Callable[[], Browser], session: Session
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    first_refresh = staff.client.cookies.get("rc_console_refresh", path="/console")
    with time_machine.travel(utcnow() + timedelta(minutes=20)):  # past the access token's life
        page = staff.get("/console/tasks")
        assert page.status_code == 200
        renewed = [c.split("=")[0] for c in page.headers.get_list("set-cookie")]
        assert {"rc_console_access", "rc_console_refresh"} <= set(renewed)
        assert staff.client.cookies.get("rc_console_refresh", path="/console") != first_refresh
    with time_machine.travel(utcnow() + timedelta(minutes=21)):
        # The spent refresh token, presented again by a copy of the old cookie (later than a
        # lost answer's retry), is refused and ends the sign-in: the API's reuse detection.
        thief = browser()
        thief.client.cookies.set("rc_console_refresh", first_refresh or "", path="/console")
        assert thief.get("/console/tasks").status_code == 303
    with time_machine.travel(utcnow() + timedelta(minutes=40)):
        assert staff.get("/console/tasks").status_code == 303  # the family was revoked


def test_a_disabled_account_loses_its_console_session_at_once(
    browser: Callable[[], Browser], app: FastAPI, client: TestClient, session: Session
) -> None:
    app.state.token_states = TokenStates(0)  # no cache: the next page reads the account
    staff = browser()
    staff.sign_in("demo-staff")
    rows = staff.get("/console/tasks", headers={"HX-Request": "true"})
    assert rows.status_code == 200
    assert "<html" not in rows.text  # htmx asks for the rows alone
    user = user_by_username(session, "demo-staff")
    disabled = client.patch(f"/api/v1/admin/users/{user.id}", json={"is_active": False})
    assert disabled.status_code == 200, disabled.text
    assert staff.get("/console/tasks").status_code == 303
    assert staff.sign_in("demo-staff").status_code == 400  # the API's refusal, as a page
