"""The closed loop: the chief reports, the centre registers and dispatches, the departments
sign for and feed back, the chief verifies on site and the case closes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.access.rules import ROLE_PERMISSIONS
from app.accounts.models import Role
from app.cases.cli import DOC_PATH
from app.cases.models import CaseSource, CaseStatus
from app.cases.workflow import (
    ACTOR_PERMISSIONS,
    ENTRIES,
    TRANSITIONS,
    Actor,
    Entry,
    entry_for,
    mermaid,
    roles_of,
    workflow_markdown,
)
from app.settings import Settings
from tests.support import Jpeg
from tests.support.cases import Loop, comparable
from tests.support.places import Spot
from tests.support.reports import stored, upload


def test_a_case_goes_round_the_closed_loop(
    loop: Loop, spot: Spot, staff: Callable[[str], str], good_jpeg: Jpeg
) -> None:
    transport = staff("transport")
    assert loop.read("demo-dispatcher")["status"] == "pending_registration"

    loop.ok("demo-dispatcher", "register")
    routed = loop.read("demo-dispatcher")
    assert routed["tasks"] == []
    dispatched = loop.ok(
        "demo-dispatcher",
        "dispatch",
        units=["urban-management", "transport"],
        reason="道路交通设施由交通局协办",
    )
    assert dispatched["status"] == "dispatched"
    assert [(t["unit"]["code"], t["is_lead"], t["status"]) for t in dispatched["tasks"]] == [
        ("urban-management", True, "pending"),
        ("transport", False, "pending"),
    ]
    lead = dispatched["tasks"][0]
    assert lead["sign_for_due_at"] < lead["handle_due_at"]
    assert 0 < lead["remaining_working_hours"] <= 8

    assert loop.ok("demo-staff", "sign_for")["status"] == "in_progress"
    loop.ok(transport, "sign_for")
    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    refused = loop.act("demo-staff", "feed_back", note="已修补")
    assert (refused.status_code, refused.json()["code"]) == (422, "photos_required")
    after_lead = loop.ok("demo-staff", "feed_back", note="已修补坑洼", photo_ids=[fix])
    assert after_lead["status"] == "in_progress"  # the cooperating unit is not done yet
    marking = upload(loop.client, good_jpeg(), headers=loop.as_user(transport))["id"]
    done = loop.ok(transport, "feed_back", note="已恢复标线", photo_ids=[marking])
    assert done["status"] == "awaiting_verification"

    waiting = comparable(loop.read("demo-chief-3"))
    far = loop.act("demo-chief-3", "verify_pass", lon=spot.moved(500)[0], lat=spot.lat)
    assert (far.status_code, far.json()["code"]) == (422, "too_far_from_case")
    assert comparable(loop.read("demo-chief-3")) == waiting
    closed = loop.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat, note="已修好")
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    history = closed["history"]
    assert [e["kind"] for e in history] == [
        "reported", "registered", "dispatched", "signed_for", "signed_for",
        "fed_back", "fed_back", "verified",
    ]  # fmt: skip
    # The history replays to the case's status.
    status = None
    for event in history:
        status = event["to_status"] or status
    assert status == closed["status"]
    assert history[2]["actor_role"] == "dispatcher"
    assert history[-1]["lon"] == pytest.approx(spot.lon)


def test_a_failed_verification_sends_it_back_for_rework(
    loop: Loop, spot: Spot, good_jpeg: Jpeg
) -> None:
    loop.ok("demo-dispatcher", "register")
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="仅城管处置")
    loop.ok("demo-staff", "sign_for")
    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="已处理", photo_ids=[fix])
    still = upload(loop.client, good_jpeg())["id"]

    again = loop.ok(
        "demo-chief-3",
        "verify_fail",
        lon=spot.lon,
        lat=spot.lat,
        note="坑洼仍在",
        photo_ids=[still],
    )

    assert again["status"] == "in_progress"
    assert again["rework_count"] == 1
    assert [t["status"] for t in again["tasks"]] == ["signed"]
    assert again["history"][-1]["kind"] == "rework"


def test_dispatch_follows_the_routing_decision_by_default(loop: Loop) -> None:
    loop.ok("demo-dispatcher", "register")
    case = loop.ok("demo-dispatcher", "dispatch")
    # Huiji H1: its lead acts on each pothole; the item's responsible units get nothing.
    assert [(t["unit"]["code"], t["is_lead"]) for t in case["tasks"]] == [
        ("urban-management", True)
    ]


def test_a_cooperating_unit_no_longer_needed_is_released(dispatched: Loop) -> None:
    released = dispatched.ok("demo-dispatcher", "release", unit_code="transport", note="无需协办")
    assert {t["unit"]["code"]: t["status"] for t in released["tasks"]} == {
        "urban-management": "pending",
        "transport": "released",
    }


def test_two_people_acting_on_one_version_cannot_both_win(loop: Loop) -> None:
    first = loop.act("demo-dispatcher", "register")
    second = loop.act("demo-dispatcher", "reject", note="重复", reason="duplicate")

    assert first.status_code == 200
    assert (second.status_code, second.json()["code"]) == (409, "version_conflict")
    assert second.json()["case"]["status"] == "registered"
    assert second.json()["case"]["version"] == first.json()["version"]


def test_bad_steps_are_refused_and_change_nothing(
    loop: Loop, session: Session, settings: Settings, staff: Callable[[str], str]
) -> None:
    health = staff("health")
    before = stored(session, settings)
    version = loop.version
    no_version = loop.client.post(
        f"/api/v1/cases/{loop.number}/actions/register",
        json={},
        headers=loop.as_user("demo-dispatcher"),
    )
    assert (no_version.status_code, no_version.json()["code"]) == (428, "version_required")
    cases = [
        ("demo-staff", "sign_for", {}, 409, "transition_not_allowed"),
        ("demo-patroller", "register", {}, 403, "forbidden"),
        ("demo-dispatcher", "reject", {}, 422, "note_required"),
        ("demo-dispatcher", "reject", {"note": "不归我们管"}, 422, "reason_required"),
        ("demo-dispatcher", "reject", {"note": "x", "reason": "boring"}, 422, "reason_required"),
        # Each step is an operation of its own: there is no step to take by another name.
        ("demo-dispatcher", "frobnicate", {}, 404, "not_found"),
        # A step's body takes what the step takes (`units` is dispatch's), nothing more.
        ("demo-dispatcher", "register", {"units": ["urban-management"]}, 422, "validation_failed"),
    ]
    for who, action, body, status, code in cases:
        response = loop.act(who, action, **body)
        assert (response.status_code, response.json()["code"]) == (status, code), action
    stale = loop.client.post(
        f"/api/v1/cases/{loop.number}/actions/register",
        json={"version": version - 1},
        headers=loop.as_user("demo-dispatcher"),
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
    assert stored(session, settings) == before

    loop.ok("demo-dispatcher", "register")
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="仅城管处置")
    others = [
        (health, {}, 409, "no_task_for_unit"),  # sees the district's cases, has no task
        ("demo-staff", {"unit_code": "transport"}, 403, "forbidden"),
    ]
    for who, body, status, code in others:
        response = loop.act(who, "sign_for", **body)
        assert (response.status_code, response.json()["code"]) == (status, code), who
    assert loop.read("demo-dispatcher")["tasks"][0]["status"] == "pending"


def test_the_workflow_table_is_published_and_drawn(client: TestClient) -> None:
    table = client.get("/api/v1/workflow").json()
    assert [t["action"] for t in table] == [t.action.value for t in TRANSITIONS]
    verify = next(t for t in table if t["action"] == "verify_pass")
    assert verify["needs"] == ["on_site"]
    assert verify["sources"] == ["awaiting_verification"]
    assert verify["targets"] == ["closed"]
    assert "road_chief" in verify["roles"]
    decide = next(t for t in table if t["action"] == "decide_return")
    assert decide["needs"] == ["decision", "unit"]
    assert decide["task_sources"] == ["return_requested"]
    assert decide["roles"] == ["dispatcher"]
    diagram = mermaid()
    assert "awaiting_verification --> closed: 核查通过（结案）" in diagram
    assert "hung_up --> in_progress: 恢复处置" in diagram
    for status in CaseStatus:
        assert status.value in diagram


def test_the_committed_workflow_document_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == workflow_markdown(), (
        "docs/workflow.md is out of date: run `.venv/bin/roadchief workflow doc`"
    )


def test_the_workflow_actors_are_permissions_of_the_roles_they_always_were() -> None:
    """One table of who may do what (`access/rules.py`): the workflow's actors name
    permissions, and the roles holding them are those each actor always had."""
    expected = {
        Actor.DISPATCHER: {Role.DISPATCHER, Role.ADMIN},
        Actor.TASK_UNIT_STAFF: {Role.DEPARTMENT_STAFF, Role.ADMIN},
        Actor.VERIFIER: {Role.ROAD_CHIEF, Role.PATROLLER, Role.SUPERVISOR, Role.ADMIN},
        Actor.SUPERVISOR: {Role.SUPERVISOR, Role.ADMIN},
        Actor.ADMIN: {Role.ADMIN},
    }
    for actor, roles in expected.items():
        assert roles_of(frozenset({actor})) == roles, actor
        naive = {
            r for r, granted in ROLE_PERMISSIONS.items() if ACTOR_PERMISSIONS[actor] in granted
        }
        assert naive == roles, actor


def test_the_table_says_how_each_source_opens_a_case(client: TestClient) -> None:
    """The entry rows: every source has one, they come first in the published table with
    no from-status, and the runtime guard finds the row each new case opens by."""
    table = client.get("/api/v1/workflow").json()
    entries = [t for t in table if not t["sources"]]
    assert entries == table[: len(ENTRIES)]
    assert {t["action"]: t["targets"] for t in entries} == {
        "report": ["pending_registration"],
        "fix_on_spot": ["awaiting_verification"],
        "inspection_finding": ["pending_registration"],
        "platform_import": ["pending_registration"],
        "whistle": ["dispatched"],
    }
    whistle = next(t for t in entries if t["action"] == "whistle")
    assert whistle["roles"] == ["road_chief"]
    for source in CaseSource:
        assert entry_for(source).opens is source
    assert entry_for(CaseSource.REPORT, fixed_on_spot=True).action is Entry.FIX_ON_SPOT
    with pytest.raises(ValueError, match="no entry row"):
        entry_for(CaseSource.WHISTLE, fixed_on_spot=True)
    assert "[*] --> dispatched: 吹哨立案" in mermaid()
