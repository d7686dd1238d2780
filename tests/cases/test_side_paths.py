"""The closed loop's side paths: a department says "not ours" (退回), asks for more time
(延期), the centre hangs a long case up (挂账) and resumes it, a chief reopens a closed one."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.calendar.service import working_calendar
from app.cases.models import Case
from app.core.database import utcnow
from app.settings import Settings
from tests.support import Jpeg
from tests.support.cases import Loop, comparable, task_of
from tests.support.places import Spot
from tests.support.reports import stored, upload


def test_a_lead_unit_returns_a_case_and_the_centre_upholds_it(dispatched: Loop) -> None:
    loop = dispatched
    bare = loop.act("demo-staff", "return")
    assert (bare.status_code, bare.json()["code"]) == (422, "note_required")
    asked = loop.ok("demo-staff", "return", note="该井盖属燃气公司，不归城管")
    assert task_of(asked, "urban-management")["status"] == "return_requested"

    queue = loop.client.get(
        "/api/v1/queues/dispatch",
        params={"stage": "returns"},
        headers=loop.as_user("demo-dispatcher"),
    ).json()
    assert [c["number"] for c in queue["items"]] == [loop.number]
    undecided = loop.act("demo-dispatcher", "decide_return", unit_code="urban-management")
    assert (undecided.status_code, undecided.json()["code"]) == (422, "decision_required")
    no_unit = loop.act("demo-dispatcher", "decide_return", approved=True)
    assert (no_unit.status_code, no_unit.json()["code"]) == (422, "unit_required")

    upheld = loop.ok(
        "demo-dispatcher", "decide_return", unit_code="urban-management", approved=True
    )
    assert upheld["status"] == "registered"  # back to the centre, to dispatch again
    returned = task_of(upheld, "urban-management")
    assert (returned["status"], returned["is_lead"], returned["returns_refused"]) == (
        "returned", False, 0,
    )  # fmt: skip
    assert upheld["history"][-1]["kind"] == "return_decided"

    again = loop.ok("demo-dispatcher", "dispatch", units=["transport"], reason="改由交通局牵头")
    assert again["status"] == "dispatched"
    assert task_of(again, "transport")["is_lead"] is True
    assert task_of(again, "urban-management")["status"] == "returned"


def test_a_refused_return_counts_against_the_department(dispatched: Loop) -> None:
    loop = dispatched
    loop.ok("demo-staff", "sign_for")
    loop.ok("demo-staff", "return", note="不归我们")
    refused = loop.ok(
        "demo-dispatcher", "decide_return", unit_code="urban-management", approved=False,
        note="占道经营属城管职责",
    )  # fmt: skip
    task = task_of(refused, "urban-management")
    assert (task["status"], task["returns_refused"]) == ("signed", 1)  # back to work
    assert refused["status"] == "in_progress"
    assert refused["history"][-1]["kind"] == "return_decided"


# A week after a Wednesday's deadline is a working moment: the extension counts as asked.
@pytest.mark.time_machine("2026-11-18T10:00:00+08:00")
def test_an_extension_is_asked_for_and_granted(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    before, rows = comparable(loop.read("demo-staff")), stored(session, settings)
    due = datetime.fromisoformat(
        task_of(loop.read("demo-staff"), "urban-management")["handle_due_at"]
    )
    past = loop.act("demo-staff", "request_extension", note="需采购配件",
                    new_due_at=(utcnow() - timedelta(hours=1)).isoformat())  # fmt: skip
    assert (past.status_code, past.json()["code"]) == (422, "deadline_in_past")
    sooner = loop.act("demo-staff", "request_extension", note="需采购配件",
                      new_due_at=(due - timedelta(minutes=1)).isoformat())  # fmt: skip
    assert (sooner.status_code, sooner.json()["code"]) == (422, "deadline_not_later")
    too_far = loop.act("demo-staff", "request_extension", note="明年再说",
                       new_due_at=(due + timedelta(days=400)).isoformat())  # fmt: skip
    assert (too_far.status_code, too_far.json()["code"]) == (422, "deadline_too_far")
    naive = loop.act("demo-staff", "request_extension", note="x", new_due_at="2030-01-01T10:00:00")
    assert (naive.status_code, naive.json()["code"]) == (422, "validation_failed")
    assert comparable(loop.read("demo-staff")) == before  # no refusal changed the case
    assert stored(session, settings) == rows

    wanted = due + timedelta(days=7)
    asked = loop.ok(
        "demo-staff", "request_extension", note="需采购配件", new_due_at=wanted.isoformat()
    )
    assert (
        datetime.fromisoformat(task_of(asked, "urban-management")["extension_requested_until"])
        == wanted
    )
    twice = loop.act("demo-staff", "request_extension", note="再延", new_due_at=wanted.isoformat())
    assert (twice.status_code, twice.json()["code"]) == (409, "extension_pending")
    queue = loop.client.get(
        "/api/v1/queues/dispatch", params={"stage": "extensions"},
        headers=loop.as_user("demo-dispatcher"),
    ).json()  # fmt: skip
    assert [c["number"] for c in queue["items"]] == [loop.number]

    shorter = loop.act(
        "demo-dispatcher", "decide_extension", unit_code="urban-management", approved=True,
        new_due_at=(due - timedelta(hours=1)).isoformat(),
    )  # fmt: skip
    assert (shorter.status_code, shorter.json()["code"]) == (422, "deadline_not_later")
    granted = loop.ok("demo-dispatcher", "decide_extension", unit_code="urban-management",
                      approved=True)  # fmt: skip
    task = task_of(granted, "urban-management")
    assert datetime.fromisoformat(task["handle_due_at"]) == wanted
    assert (task["extension_requested_until"], task["extension_count"]) == (None, 1)
    assert task["remaining_working_hours"] > 30
    assert datetime.fromisoformat(granted["handle_due_at"]) == wanted  # the case's latest term
    nothing = loop.act("demo-dispatcher", "decide_extension", unit_code="urban-management",
                       approved=True)  # fmt: skip
    assert (nothing.status_code, nothing.json()["code"]) == (409, "no_extension_request")


def test_a_refused_extension_keeps_the_deadline(dispatched: Loop) -> None:
    loop = dispatched
    before = task_of(loop.read("demo-staff"), "transport")["handle_due_at"]
    later = (datetime.fromisoformat(before) + timedelta(days=3)).isoformat()
    loop.ok(loop.transport, "request_extension", note="人手不足", new_due_at=later)  # type: ignore[attr-defined]
    refused = loop.ok("demo-dispatcher", "decide_extension", unit_code="transport", approved=False)
    task = task_of(refused, "transport")
    assert (task["handle_due_at"], task["extension_requested_until"]) == (before, None)


def test_hanging_up_pauses_the_deadlines_and_resuming_shifts_them(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    loop.ok("demo-staff", "sign_for")
    before = task_of(loop.read("demo-staff"), "urban-management")
    hung = loop.ok("demo-dispatcher", "hang_up", note="需列入明年改造计划")
    assert hung["status"] == "hung_up"
    assert hung["hung_up_at"] is not None
    tasks = loop.client.get("/api/v1/tasks", headers=loop.as_user("demo-staff")).json()
    assert loop.number not in [t["case_number"] for t in tasks["items"]]
    refused = loop.act("demo-staff", "feed_back", note="x")
    assert (refused.status_code, refused.json()["code"]) == (409, "transition_not_allowed")

    # Ten days pass while it hangs.
    paused_at = utcnow() - timedelta(days=10)
    session.execute(update(Case).where(Case.number == loop.number).values(hung_up_at=paused_at))
    resumed = loop.ok("demo-dispatcher", "resume")
    assert resumed["status"] == "in_progress"  # the lead had signed for it
    after = task_of(resumed, "urban-management")
    old_due = datetime.fromisoformat(before["handle_due_at"])
    new_due = datetime.fromisoformat(after["handle_due_at"])
    # The deadline moved by the working time the pause took (whatever holidays it spanned).
    calendar = working_calendar(session, settings)
    paused_hours = calendar.working_hours_between(paused_at, utcnow())
    assert paused_hours > 0
    assert calendar.working_hours_between(old_due, new_due) == pytest.approx(paused_hours, abs=0.05)
    # The working hours that were left when it was hung up are left now.
    left_at_pause = calendar.working_hours_between(paused_at, old_due)
    assert after["remaining_working_hours"] == pytest.approx(left_at_pause, abs=0.05)
    assert resumed["history"][-1]["kind"] == "resumed"


def test_a_closed_case_is_reopened_within_the_window_only(
    loop: Loop, spot: Spot, good_jpeg: Jpeg, session: Session, settings: Settings
) -> None:
    loop.ok("demo-dispatcher", "register")
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管处置")
    loop.ok("demo-staff", "sign_for")
    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="已修补", photo_ids=[fix])
    loop.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat)

    reopened = loop.ok("demo-chief-3", "reopen", note="一周后坑洼又出现")
    assert reopened["status"] == "in_progress"
    assert (reopened["reopen_count"], reopened["closed_at"]) == (1, None)
    assert task_of(reopened, "urban-management")["status"] == "signed"
    assert task_of(reopened, "urban-management")["remaining_working_hours"] > 0

    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="重新修补", photo_ids=[fix])
    loop.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat)
    session.execute(
        update(Case).where(Case.number == loop.number)
        .values(closed_at=utcnow() - timedelta(days=settings.reopen_days + 1))
    )  # fmt: skip
    before = stored(session, settings)
    late = loop.act("demo-chief-3", "reopen", note="又坏了")
    assert (late.status_code, late.json()["code"]) == (409, "reopen_window_passed")
    assert stored(session, settings) == before


def test_only_admins_cancel_and_a_cancelled_case_leaves_the_queues(dispatched: Loop) -> None:
    loop = dispatched
    not_admin = loop.act("demo-dispatcher", "cancel", note="误报")
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "forbidden")
    cancelled = loop.ok("demo-admin", "cancel", note="误报，经核实无此问题")
    assert cancelled["status"] == "cancelled"
    assert {t["status"] for t in cancelled["tasks"]} == {"released"}
    tasks = loop.client.get("/api/v1/tasks", headers=loop.as_user("demo-staff")).json()
    assert loop.number not in [t["case_number"] for t in tasks["items"]]


def test_a_unit_acts_only_on_its_own_task(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    before, rows = comparable(loop.read("demo-staff")), stored(session, settings)
    other = loop.act("demo-staff", "request_extension", unit_code="transport", note="x",
                     new_due_at="2031-01-01T10:00:00+08:00")  # fmt: skip
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    staff_decides = loop.act("demo-staff", "decide_return", unit_code="urban-management",
                             approved=True)  # fmt: skip
    assert (staff_decides.status_code, staff_decides.json()["code"]) == (403, "forbidden")
    not_asked = loop.act("demo-dispatcher", "decide_return", unit_code="transport", approved=True)
    assert (not_asked.status_code, not_asked.json()["code"]) == (409, "transition_not_allowed")
    assert comparable(loop.read("demo-staff")) == before
    assert stored(session, settings) == rows


def test_a_lead_given_back_passes_the_case_to_a_unit_already_at_work(dispatched: Loop) -> None:
    loop = dispatched
    transport = loop.transport  # type: ignore[attr-defined]
    loop.ok(transport, "sign_for")  # the cooperating unit is already on site
    loop.ok("demo-staff", "return", note="不归城管")
    back = loop.ok("demo-dispatcher", "decide_return", unit_code="urban-management", approved=True)
    assert back["status"] == "registered"
    tasks = loop.client.get("/api/v1/tasks", headers=loop.as_user(transport)).json()
    assert loop.number not in [t["case_number"] for t in tasks["items"]]  # nothing to do now

    again = loop.ok("demo-dispatcher", "dispatch", units=["transport"], reason="交通局牵头")
    # The new lead had signed already: the handling goes on, it is not stuck at sign-for.
    assert again["status"] == "in_progress"
    assert task_of(again, "transport")["is_lead"] is True
    assert task_of(again, "transport")["status"] == "signed"
