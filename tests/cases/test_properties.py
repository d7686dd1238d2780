"""Whatever anyone tries, in any order, the case stays sound: random sequences of steps by
random people, checked after every one of them.

- a refused step changes nothing;
- the history replays to the case's status, and its counters match the history;
- no case waits on nobody: a case being handled has a unit with an open task, and a
  finished or verified case has none left open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseEvent, CaseEventKind
from tests.support.cases import Loop, comparable
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload

UM, TR = "demo-staff", "staff-transport"
FAR = "2030-06-28T17:00:00+08:00"


def steps(spot: Spot) -> list[tuple[str, str, dict[str, Any]]]:
    here = {"lon": spot.lon, "lat": spot.lat}
    photos = {"note": "处置完毕", "photo_ids": ["{photo}"]}
    return [
        ("demo-dispatcher", "register", {}),
        ("demo-dispatcher", "reject", {"note": "无效上报", "reason": "invalid"}),
        ("demo-dispatcher", "reject", {"note": "理由不在列表里"}),
        (
            "demo-dispatcher",
            "dispatch",
            {"units": ["urban-management", "transport"], "reason": "r"},
        ),
        ("demo-dispatcher", "dispatch", {"units": ["transport"], "reason": "改派"}),
        (UM, "sign_for", {}),
        (TR, "sign_for", {}),
        (UM, "return", {"note": "非本单位职责"}),
        (TR, "return", {"note": "非本单位职责"}),
        ("demo-dispatcher", "decide_return", {"unit_code": "urban-management", "approved": True}),
        ("demo-dispatcher", "decide_return", {"unit_code": "urban-management", "approved": False}),
        ("demo-dispatcher", "decide_return", {"unit_code": "transport", "approved": True}),
        (UM, "request_extension", {"note": "等配件", "new_due_at": FAR}),
        (
            "demo-dispatcher",
            "decide_extension",
            {"unit_code": "urban-management", "approved": True},
        ),
        (
            "demo-dispatcher",
            "decide_extension",
            {"unit_code": "urban-management", "approved": False},
        ),
        (UM, "feed_back", photos),
        (TR, "feed_back", photos),
        (UM, "feed_back", {"note": "没带照片"}),
        ("demo-chief-3", "verify_pass", here),
        ("demo-chief-3", "verify_fail", {**photos, **here}),
        ("demo-chief-3", "verify_pass", {"lon": spot.moved(900)[0], "lat": spot.lat}),
        ("demo-dispatcher", "release", {"unit_code": "transport", "note": "无需协办"}),
        ("demo-dispatcher", "hang_up", {"note": "待资金"}),
        ("demo-dispatcher", "resume", {}),
        ("demo-chief-3", "reopen", {"note": "问题复现"}),
        ("demo-dispatcher", "urge", {"note": "请加快"}),
        ("demo-staff", "register", {}),
        ("demo-admin", "cancel", {"note": "撤销"}),
    ]


def check_invariants(session: Session, case: dict[str, Any]) -> None:
    history = case["history"]
    status = None
    for event in history:
        status = event["to_status"] or status
    assert status == case["status"], [e["kind"] for e in history]
    count = {k: sum(e["kind"] == k for e in history) for k in ("rework", "urged", "reopened")}
    assert (case["rework_count"], case["urge_count"], case["reopen_count"]) == (
        count["rework"], count["urged"], count["reopened"],
    )  # fmt: skip
    refused = session.scalar(
        select(func.count())
        .select_from(CaseEvent)
        .join(Case, CaseEvent.case_id == Case.id)
        .where(Case.number == case["number"], CaseEvent.kind == CaseEventKind.RETURN_DECIDED)
        .where(CaseEvent.detail["upheld"].as_boolean().is_(False))
    )
    assert sum(t["returns_refused"] for t in case["tasks"]) == refused
    open_tasks = [t for t in case["tasks"] if t["status"] in ("pending", "signed")]
    asking = [t for t in case["tasks"] if t["extension_requested_until"]]
    assert all(t in open_tasks for t in asking), "only an open task can wait on an extension"
    active = open_tasks + [t for t in case["tasks"] if t["status"] == "return_requested"]
    if case["status"] in ("dispatched", "in_progress", "hung_up"):
        assert active, "a case being handled must have a unit on it"
        assert sum(t["is_lead"] for t in active) <= 1
    if case["status"] in ("awaiting_verification", "closed", "rejected", "cancelled"):
        assert active == [], case["status"]
    if case["status"] == "dispatched":
        assert not any(t["is_lead"] and t["status"] in ("signed", "done") for t in case["tasks"])


def test_random_steps_keep_every_case_sound(
    loop: Loop,
    spot: Spot,
    session: Session,
    staff: Callable[[str], str],
    good_jpeg: Callable[..., bytes],
) -> None:
    staff("transport")  # creates transport-staff
    chief = loop.client
    photo_of = {
        who: upload(chief, good_jpeg(), headers=loop.as_user(who))["id"]
        for who in (UM, TR, "demo-chief-3")
    }
    vocabulary = steps(spot)
    first = [loop]

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.sampled_from(range(len(vocabulary))), min_size=1, max_size=14))
    def run(sequence: list[int]) -> None:
        case_loop = first.pop() if first else new_case()
        for index in sequence:
            who, action, body = vocabulary[index]
            if "photo_ids" in body:
                body = {**body, "photo_ids": [photo_of[who]]}
            before = comparable(case_loop.read("demo-admin"))
            response = case_loop.act(who, action, **body)
            assert response.status_code < 500, response.text
            after = case_loop.read("demo-admin")
            if response.status_code == 200:
                case_loop.version = after["version"]
                assert after["version"] == before["version"] + 1
            else:
                assert comparable(after) == before, (action, response.json()["code"])
            check_invariants(session, after)
        if case_loop.read("demo-admin")["status"] not in ("closed", "rejected", "cancelled"):
            case_loop.ok("demo-admin", "cancel", note="清场")  # the next case starts afresh

    def new_case() -> Loop:
        receipt = multipart(chief, report_body(spot), [good_jpeg()]).json()
        assert receipt["case_number"]
        return Loop(chief, loop.as_user, receipt["case_number"])

    run()
