"""An admin manages users, road chiefs' segments and API keys; every change is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import ApiKey, RefreshToken, SegmentChief, User
from app.accounts.service import user_by_username
from app.audit.models import AuditEvent, AuditEventType
from tests.support import Headers
from tests.support.actors import refresh, sign_in

USERS = "/api/v1/admin/users"


def new_user(**overrides: Any) -> dict[str, Any]:
    return {
        "username": "li.patrol",
        "display_name": "李巡查",
        "password": "Patrol#2026ok",
        "roles": ["patroller"],
        "jurisdiction_codes": ["410199002"],
        **overrides,
    }


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def audit(session: Session, event: AuditEventType) -> list[AuditEvent]:
    """Events of this test (the demo users' creation is audited too, via the CLI path)."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.event == event, AuditEvent.actor_user_id.is_not(None))
            .order_by(AuditEvent.id)
        )
    )


def test_admin_creates_a_patroller_who_then_signs_in(
    client: TestClient, anonymous: TestClient, session: Session
) -> None:
    response = client.post(USERS, json=new_user())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["roles"] == ["patroller"]
    assert [j["code"] for j in body["jurisdictions"]] == ["410199002"]
    stored = session.get(User, body["id"])
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert sign_in(anonymous, "li.patrol", "Patrol#2026ok").status_code == 200
    [event] = audit(session, AuditEventType.USER_CREATED)
    assert event.subject_user_id == body["id"]
    assert event.detail["roles"] == ["patroller"]


def test_weak_password_names_every_broken_rule_and_stores_nothing(
    client: TestClient, session: Session
) -> None:
    before = user_count(session)
    response = client.post(USERS, json=new_user(password="lipatrol"))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "weak_password"
    assert {e["code"] for e in body["errors"]} == {"password_too_simple"}
    empty = client.post(USERS, json=new_user(password=""))
    assert {e["code"] for e in empty.json()["errors"]} >= {"password_too_short"}
    common = client.post(USERS, json=new_user(password="Admin@123"))
    assert "password_too_common" in {e["code"] for e in common.json()["errors"]}
    own_name = client.post(USERS, json=new_user(password="li.patrol#2026X"))
    assert "password_contains_username" in {e["code"] for e in own_name.json()["errors"]}
    assert user_count(session) == before
    assert audit(session, AuditEventType.USER_CREATED) == []


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"roles": ["road_chief"]}, "chief_level", "chief_level_required"),
        ({"chief_level": 2}, "chief_level", "chief_level_not_allowed"),
        ({"roles": ["department_staff"]}, "unit_code", "unit_required"),
        ({"unit_code": "water-company"}, "unit_code", "unit_not_allowed"),
        ({"jurisdiction_codes": []}, "jurisdiction_codes", "scope_required"),
        ({"jurisdiction_codes": ["999999"]}, "jurisdiction_codes", "unknown_jurisdiction"),
        ({"roles": ["department_staff"], "unit_code": "no-such"}, "unit_code", "unknown_unit"),
    ],
)
def test_contradictory_accounts_are_refused(
    client: TestClient, session: Session, overrides: dict[str, Any], field: str, code: str
) -> None:
    before = user_count(session)
    response = client.post(USERS, json=new_user(**overrides))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "user_invalid"
    assert (body["errors"][0]["loc"][0], body["errors"][0]["code"]) == (field, code)
    assert user_count(session) == before


def test_bad_usernames_and_taken_usernames(client: TestClient) -> None:
    assert client.post(USERS, json=new_user(username="No Spaces")).status_code == 422
    taken = client.post(USERS, json=new_user(username="demo-chief-2"))
    assert (taken.status_code, taken.json()["code"]) == (409, "username_taken")


def test_role_and_scope_changes_are_audited_with_before_and_after(
    client: TestClient, session: Session
) -> None:
    user_id = user_by_username(session, "demo-patroller").id
    response = client.patch(
        f"{USERS}/{user_id}",
        json={
            "roles": ["patroller", "road_chief"],
            "chief_level": 3,
            "jurisdiction_codes": ["410199001002"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["patroller", "road_chief"]
    [roles] = audit(session, AuditEventType.ROLES_CHANGED)
    assert roles.detail["before"]["roles"] == ["patroller"]
    assert roles.detail["after"] == {
        "roles": ["patroller", "road_chief"],
        "chief_level": 3,
        "unit": None,
    }
    [scope] = audit(session, AuditEventType.SCOPE_CHANGED)
    assert (scope.detail["before"], scope.detail["after"]) == (["410199001"], ["410199001002"])


def test_an_admin_cannot_lock_themselves_out(client: TestClient, session: Session) -> None:
    me = user_by_username(session, "demo-admin").id
    disable = client.patch(f"{USERS}/{me}", json={"is_active": False})
    assert (disable.status_code, disable.json()["code"]) == (409, "cannot_lock_out_self")
    demote = client.patch(
        f"{USERS}/{me}", json={"roles": ["assessor"], "jurisdiction_codes": ["410199"]}
    )
    assert demote.status_code == 409
    assert user_by_username(session, "demo-admin").roles == ["admin"]


def test_password_reset_ends_sessions_and_asks_for_a_new_password(
    client: TestClient, anonymous: TestClient, session: Session
) -> None:
    pair = sign_in(anonymous, "demo-chief-3").json()
    user_id = user_by_username(session, "demo-chief-3").id
    weak = client.post(f"{USERS}/{user_id}/password", json={"new_password": "abc"})
    assert weak.status_code == 422
    assert (
        client.post(
            f"{USERS}/{user_id}/password", json={"new_password": "Temporary#2026"}
        ).status_code
        == 204
    )
    assert refresh(anonymous, pair["refresh_token"]).status_code == 400
    fresh = sign_in(anonymous, "demo-chief-3", "Temporary#2026").json()
    me = anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert me.json()["password_must_change"] is True
    assert len(audit(session, AuditEventType.PASSWORD_RESET)) == 1
    assert (
        session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_reason == "password_reset")
        )
        == 1
    )


def test_linking_a_chief_to_segments(
    client: TestClient, session: Session, as_user: Headers
) -> None:
    chief = user_by_username(session, "demo-chief-2").id
    own = client.get(f"{USERS}/{chief}/segments").json()
    assert own
    keep = [s["code"] for s in own[:3]]
    other_street = client.get(
        "/api/v1/territory/road-segments", params={"street": "410199002", "limit": 1}
    ).json()["features"][0]["id"]

    outside = client.put(
        f"{USERS}/{chief}/segments", json={"segment_codes": [*keep, other_street, "RS-NOPE"]}
    )
    assert outside.status_code == 422
    assert [e["code"] for e in outside.json()["errors"]] == [
        "segment_out_of_scope",
        "unknown_segment",
    ]

    assert client.put(f"{USERS}/{chief}/segments", json={"segment_codes": keep}).status_code == 200
    mine = client.get("/api/v1/me/segments", headers=as_user("demo-chief-2")).json()
    assert [s["code"] for s in mine["items"]] == sorted(keep)
    assert client.get("/api/v1/me", headers=as_user("demo-chief-2")).json()["segment_count"] == len(
        keep
    )

    # A second level-2 chief for the same street wants one of them.
    created = client.post(
        USERS,
        json=new_user(
            username="zhao.chief",
            roles=["road_chief"],
            chief_level=2,
            jurisdiction_codes=["410199001"],
        ),
    ).json()
    taken = client.put(f"{USERS}/{created['id']}/segments", json={"segment_codes": keep[:1]})
    assert taken.status_code == 409
    assert taken.json()["conflicts"] == [{"segment_code": keep[0], "chief": "demo-chief-2"}]
    moved = client.put(
        f"{USERS}/{created['id']}/segments", json={"segment_codes": keep[:1], "reassign": True}
    )
    assert moved.status_code == 200
    assert (
        session.scalar(
            select(SegmentChief.user_id)
            .join(SegmentChief.segment)
            .where(SegmentChief.level == 2)
            .where(SegmentChief.segment.has(code=keep[0]))
        )
        == created["id"]
    )
    events = audit(session, AuditEventType.SEGMENTS_CHANGED)
    assert events[-1].detail["taken_from"] == ["demo-chief-2"]


def test_api_key_reads_its_subtree_and_nothing_else(
    client: TestClient, anonymous: TestClient, session: Session
) -> None:
    created = client.post(
        "/api/v1/admin/api-keys",
        json={"name": "考核公司夜间同步", "jurisdiction_codes": ["410199002"]},
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    stored = session.get(ApiKey, created.json()["id"])
    assert stored is not None
    assert key not in stored.key_hash  # only the hash is kept
    assert "key" not in client.get("/api/v1/admin/api-keys").json()[0]

    machine = {"X-API-Key": key}
    page = anonymous.get("/api/v1/territory/road-segments", params={"limit": 1000}, headers=machine)
    assert page.status_code == 200
    assert {f["properties"]["street_code"] for f in page.json()["features"]} == {"410199002"}
    assert stored.last_used_at is not None
    me = anonymous.get("/api/v1/me", headers=machine).json()
    assert me["kind"] == "api_key"
    assert me["permissions"] == [
        "cases:read",
        "patrols:read",
        "routing:read",
        "territory:read",
        "users:read",
        "whistles:read",
    ]

    write = anonymous.post(
        "/api/v1/admin/territory/assets/import",
        headers=machine,
        json={"type": "FeatureCollection", "features": []},
    )
    assert write.status_code == 403

    revoked = client.delete(f"/api/v1/admin/api-keys/{stored.id}")
    assert revoked.json()["revoked_at"] is not None
    after = anonymous.get("/api/v1/territory/road-segments", headers=machine)
    assert (after.status_code, after.json()["code"]) == (401, "api_key_invalid")
    assert len(audit(session, AuditEventType.API_KEY_CREATED)) == 1
    assert len(audit(session, AuditEventType.API_KEY_REVOKED)) == 1

    forged = anonymous.get("/api/v1/me", headers={"X-API-Key": key[:-3] + "abc"})
    assert forged.status_code == 401
    nonsense = anonymous.get("/api/v1/me", headers={"X-API-Key": "hello"})
    assert nonsense.json()["code"] == "api_key_invalid"


def test_api_key_needs_known_jurisdictions(client: TestClient, session: Session) -> None:
    response = client.post(
        "/api/v1/admin/api-keys", json={"name": "x", "jurisdiction_codes": ["123"]}
    )
    assert (response.status_code, response.json()["code"]) == (422, "api_key_invalid_scope")
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_admins_query_the_audit_log(client: TestClient, anonymous: TestClient) -> None:
    started = datetime.now(UTC).isoformat()
    # Tests that pin a later date may have left events dated after `started` in the shared
    # demo database: this test's own are those with a higher id than the newest before it.
    newest = client.get("/api/v1/admin/audit-events", params={"limit": 1}).json()["items"]
    last_id = max((e["id"] for e in newest), default=0)
    sign_in(anonymous, "demo-chief-2", "Wrong#password1")
    sign_in(anonymous, "demo-chief-2")
    sign_in(anonymous, "demo-patroller")
    failed = client.get(
        "/api/v1/admin/audit-events", params={"event": "login_failed", "user": "demo-chief-2"}
    ).json()
    assert [e["event"] for e in failed["items"]] == ["login_failed"]
    assert failed["items"][0]["occurred_at"].endswith("+08:00")  # spoken in Asia/Shanghai
    mine = client.get(
        "/api/v1/admin/audit-events", params={"user": "demo-chief-2", "since": started}
    ).json()
    ours = [e["event"] for e in mine["items"] if e["id"] > last_id]
    assert ours == ["login_succeeded", "login_failed"]
    first = client.get("/api/v1/admin/audit-events", params={"limit": 1}).json()
    second = client.get(
        "/api/v1/admin/audit-events", params={"limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert first["items"][0]["id"] > second["items"][0]["id"]
    bad = client.get("/api/v1/admin/audit-events", params={"cursor": "!!"})
    assert bad.status_code == 400
    future = client.get("/api/v1/admin/audit-events", params={"since": "2099-01-01T00:00:00+08:00"})
    assert future.json()["items"] == []


def test_the_user_list_filters_by_unit(client: TestClient, as_user: Headers) -> None:
    staff = client.get(USERS, params={"unit": "urban-management"})
    assert staff.status_code == 200, staff.text
    users = staff.json()["items"]
    assert [u["username"] for u in users] == ["demo-staff"]
    assert {u["unit"]["code"] for u in users} == {"urban-management"}
    assert client.get(USERS, params={"unit": "transport"}).json()["items"] == []
    unknown = client.get(USERS, params={"unit": "no-such-unit"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_unit")
    # A street's chief may not list users at all; a dispatcher sees those in scope.
    chief = client.get(USERS, params={"unit": "urban-management"}, headers=as_user("demo-chief-3"))
    assert (chief.status_code, chief.json()["code"]) == (403, "forbidden")
    seen = client.get(USERS, params={"unit": "urban-management"},
                      headers=as_user("demo-dispatcher")).json()["items"]  # fmt: skip
    assert [u["username"] for u in seen] == ["demo-staff"]
