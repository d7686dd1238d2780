"""The command centre and the verifiers at the console: the dispatch queue with the
routing's proposal, decisions on returns and extensions, the verification queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.core.database import utcnow
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.cases import Loop, task_of
from tests.support.console import Browser
from tests.support.places import Spot
from tests.support.reports import multipart, report_body


def test_dispatcher_registers_and_accepts_the_routing_in_one_click(
    browser: Callable[[], Browser], loop: Loop
) -> None:
    centre = browser()
    assert centre.sign_in("demo-dispatcher").headers["location"] == "/console/dispatch"
    queue = centre.get("/console/dispatch?stage=register")
    assert queue.status_code == 200
    assert loop.number in queue.text
    assert f'id="register-{loop.number}"' in queue.text
    assert "牵头" in queue.text  # the routing's proposal beside the case

    registered = centre.post(
        f"/console/cases/{loop.number}/actions/register",
        {"version": loop.version, "back": "/console/dispatch?stage=register"},
    )
    assert registered.headers["location"] == "/console/dispatch?stage=register&flash=done"
    loop.version += 1
    proposal = loop.read("demo-dispatcher")["routing"]
    to_dispatch = centre.get("/console/dispatch?stage=dispatch")
    assert f'id="accept-{loop.number}"' in to_dispatch.text
    accepted = centre.post(
        f"/console/cases/{loop.number}/actions/dispatch",
        {"version": loop.version, "back": "//evil.example/"},  # not a console path: ignored
    )
    assert accepted.headers["location"] == f"/console/cases/{loop.number}?flash=done"
    loop.version += 1
    case = loop.read("demo-dispatcher")
    assert case["status"] == "dispatched"
    proposed = [u["code"] for u in proposal["lead_units"] + proposal["cooperating_units"]]
    assert [t["unit"]["code"] for t in case["tasks"]] == proposed


def test_dispatcher_changes_units_with_a_reason_and_rejects_with_one(
    browser: Callable[[], Browser],
    loop: Loop,
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
) -> None:
    centre = browser()
    centre.sign_in("demo-dispatcher")
    loop.ok("demo-dispatcher", "register")
    page = centre.get(f"/console/cases/{loop.number}")
    assert 'id="step-dispatch"' in page.text
    assert "分拨建议" in page.text  # the routing explanation, shown to the centre
    changed = centre.post(
        f"/console/cases/{loop.number}/actions/dispatch",
        {"version": loop.version, "units": "transport, urban-management", "reason": "交通设施"},
    )
    assert changed.status_code == 303, changed.text
    loop.version += 1
    case = loop.read("demo-dispatcher")
    assert [(t["unit"]["code"], t["is_lead"]) for t in case["tasks"]] == [
        ("transport", True),
        ("urban-management", False),
    ]

    second = multipart(
        phone("demo-chief-3"), report_body(spot, lon=spot.moved(150)[0]), [good_jpeg()]
    ).json()
    other = Loop(loop.client, as_user, second["case_number"])
    centre.get("/console/dispatch")
    no_note = centre.post(
        f"/console/cases/{other.number}/actions/reject",
        {"version": other.version, "reason": "duplicate"},
    )
    assert no_note.status_code == 422
    assert "须填写说明" in no_note.text
    rejected = centre.post(
        f"/console/cases/{other.number}/actions/reject",
        {"version": other.version, "reason": "duplicate", "note": "与上一案件重复"},
    )
    assert rejected.status_code == 303
    assert other.read("demo-dispatcher")["status"] == "rejected"


# An ordinary Wednesday: five days on is a working Monday (on the eve of a holiday it is
# not, and an extension to a rest day adds no working time: refused).
@pytest.mark.time_machine("2026-11-18T10:00:00+08:00")
def test_returns_and_extensions_are_decided_on_the_case_page(
    browser: Callable[[], Browser], dispatched: Loop, settings: Settings
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    staff.get(f"/console/cases/{dispatched.number}")
    asked = (utcnow() + timedelta(days=5)).astimezone(settings.zone).replace(tzinfo=None)
    extension = staff.post(
        f"/console/cases/{dispatched.number}/actions/request_extension",
        {
            "version": dispatched.version,
            "note": "需要采购材料",
            "new_due_at": asked.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert extension.status_code == 303, extension.text
    dispatched.version += 1

    centre = browser()
    centre.sign_in("demo-dispatcher")
    queue = centre.get("/console/dispatch?stage=extensions")
    assert dispatched.number in queue.text
    page = centre.get(f"/console/cases/{dispatched.number}")
    assert 'id="step-decide_extension"' in page.text
    granted = centre.post(
        f"/console/cases/{dispatched.number}/actions/decide_extension",
        {"version": dispatched.version, "unit_code": "urban-management", "approved": "true"},
    )
    assert granted.status_code == 303, granted.text
    dispatched.version += 1
    task = task_of(dispatched.read("demo-dispatcher"), "urban-management")
    assert task["extension_requested_until"] is None
    # Granted as asked (the calendar moves it to the next working moment, if need be).
    assert task["extension_count"] == 1
    assert task["handle_due_at"] >= asked.strftime("%Y-%m-%dT%H:%M")

    staff.get(f"/console/cases/{dispatched.number}")
    returned = staff.post(
        f"/console/cases/{dispatched.number}/actions/return",
        {"version": dispatched.version, "note": "不属于本单位职责"},
    )
    assert returned.status_code == 303
    dispatched.version += 1
    assert dispatched.number in centre.get("/console/dispatch?stage=returns").text
    refused = centre.post(
        f"/console/cases/{dispatched.number}/actions/decide_return",
        {"version": dispatched.version, "unit_code": "urban-management", "approved": "false"},
    )
    assert refused.status_code == 303
    dispatched.version += 1
    task = task_of(dispatched.read("demo-dispatcher"), "urban-management")
    assert (task["status"], task["returns_refused"]) == ("pending", 1)


def test_staff_cannot_open_the_centres_queue(browser: Callable[[], Browser]) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    refused = staff.get("/console/dispatch")
    assert refused.status_code == 403
    assert "只有指挥中心" in refused.text


def test_the_reporter_sees_the_case_to_verify_and_its_whole_history(
    browser: Callable[[], Browser], dispatched: Loop, good_jpeg: Jpeg
) -> None:
    staff = browser()
    staff.sign_in("demo-staff")
    dispatched.ok("demo-staff", "sign_for")
    dispatched.ok("demo-dispatcher", "release", unit_code="transport", note="无需协办")
    staff.get(f"/console/cases/{dispatched.number}")
    fed = staff.post(
        f"/console/cases/{dispatched.number}/actions/feed_back",
        {"version": dispatched.version, "note": "已修复"},
        files=[("photos", ("after.jpg", good_jpeg(), "image/jpeg"))],
    )
    assert fed.status_code == 303, fed.text
    assert dispatched.read("demo-dispatcher")["status"] == "awaiting_verification"

    chief = browser()
    assert chief.sign_in("demo-chief-3").headers["location"] == "/console/verification"
    queue = chief.get("/console/verification")
    assert dispatched.number in queue.text
    page = chief.get(f"/console/cases/{dispatched.number}")
    assert page.status_code == 200
    for step in ("上报", "立案", "派遣", "签收", "释放协办单位", "处置反馈"):
        assert f"<strong>{step}</strong>" in page.text
    assert 'id="step-verify_pass"' not in page.text  # on site, with the phone
    assert "分拨建议" not in page.text  # the routing is the centre's (the service says)
