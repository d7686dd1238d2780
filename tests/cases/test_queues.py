"""Who must act next: the centre's queue, a department's tasks, a chief's verifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.support import Headers, Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload


def numbers(page: dict[str, Any]) -> list[str]:
    return [item.get("number") or item["case_number"] for item in page["items"]]


def test_each_actor_sees_what_awaits_them(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
) -> None:
    chief = phone("demo-chief-3")
    made = [
        multipart(chief, report_body(spot, lon=spot.moved(100 * i)[0]), [good_jpeg()]).json()
        for i in range(3)
    ]
    cases = [Loop(chief, as_user, r["case_number"]) for r in made]
    dispatcher = as_user("demo-dispatcher")

    queue = chief.get("/api/v1/queues/dispatch", headers=dispatcher).json()
    assert numbers(queue) == [c.number for c in cases]
    for case in cases:
        case.ok("demo-dispatcher", "register")
    cases[0].ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管处置")
    cases[1].ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管处置")
    to_dispatch = chief.get(
        "/api/v1/queues/dispatch", params={"stage": "dispatch"}, headers=dispatcher
    ).json()
    assert numbers(to_dispatch) == [cases[2].number]
    staff_tries = chief.get("/api/v1/queues/dispatch", headers=as_user("demo-staff"))
    assert (staff_tries.status_code, staff_tries.json()["code"]) == (403, "forbidden")

    staff = as_user("demo-staff")
    tasks = chief.get("/api/v1/tasks", params={"limit": 1}, headers=staff).json()
    assert numbers(tasks) == [cases[0].number]
    rest = chief.get(
        "/api/v1/tasks", params={"limit": 1, "cursor": tasks["next_cursor"]}, headers=staff
    ).json()
    assert numbers(rest) == [cases[1].number]
    assert rest["next_cursor"] is None
    item = tasks["items"][0]
    assert (item["task_status"], item["is_lead"], item["overdue"]) == ("pending", True, False)
    assert item["remaining_working_hours"] > 0
    assert chief.get("/api/v1/tasks", params={"overdue": True}, headers=staff).json()["items"] == []
    other_unit = chief.get("/api/v1/tasks", params={"unit": "transport"}, headers=staff)
    assert (other_unit.status_code, other_unit.json()["code"]) == (403, "forbidden")

    cases[0].ok("demo-staff", "sign_for")
    fix = upload(chief, good_jpeg(), headers=staff)["id"]
    cases[0].ok("demo-staff", "feed_back", note="已修补", photo_ids=[fix])
    signed = chief.get("/api/v1/tasks", params={"status": "pending"}, headers=staff).json()
    assert numbers(signed) == [cases[1].number]

    to_verify = chief.get("/api/v1/queues/verification").json()  # the reporter's own
    assert numbers(to_verify) == [cases[0].number]
    for who in ("demo-chief-2", "demo-supervisor"):  # the segment's chief, a supervisor
        page = chief.get("/api/v1/queues/verification", headers=as_user(who)).json()
        assert numbers(page) == [cases[0].number], who
    assert (
        chief.get("/api/v1/queues/verification", headers=as_user("demo-patroller")).json()["items"]
        == []
    )  # neither the reporter, a chief of the segment nor a supervisor
