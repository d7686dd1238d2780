"""A case has two deadlines, named alike in every answer: the handling deadline (处置时限),
which reaching verification no longer overwrites, and the deadline of the step it waits
for now (`stage`, `stage_due_at`)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.support import Jpeg
from tests.support.cases import Loop, task_of
from tests.support.reports import upload

DAY = {"from": "2026-11-18", "to": "2026-11-18"}


def _deadlines(item: dict[str, Any]) -> tuple[Any, Any, Any]:
    return item["handle_due_at"], item["stage"], item["stage_due_at"]


@pytest.mark.time_machine("2026-11-18T10:00:00+08:00", tick=False)
def test_the_handling_deadline_survives_verification_everywhere_it_is_shown(
    loop: Loop, good_jpeg: Jpeg
) -> None:
    client, reader = loop.client, loop.as_user("demo-assessor")
    reported = loop.read("demo-dispatcher")
    assert reported["stage"] == "register"
    assert reported["stage_due_at"] is None
    loop.ok("demo-dispatcher", "register")
    handling = loop.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管")
    # roads.surface, urgent: 8 working hours from Wednesday 10:00.
    due = "2026-11-19T10:30:00+08:00"
    assert task_of(handling, "urban-management")["handle_due_at"] == due
    assert _deadlines(handling) == (due, "handle", due)
    loop.ok("demo-staff", "sign_for")
    fix = upload(client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    verifying = loop.ok("demo-staff", "feed_back", note="已修补", photo_ids=[fix])

    assert verifying["status"] == "awaiting_verification"
    handle_due, stage, verify_due = _deadlines(verifying)
    assert (handle_due, stage) == (due, "verify")
    assert verify_due is not None
    assert verify_due > "2026-11-18T10:00:00+08:00"
    assert verify_due != due
    # The reporter's view of the report, the verifier's queue, the assessors' search.
    receipt = client.get("/api/v1/reports/mine").json()["items"][0]
    report = client.get(f"/api/v1/reports/{receipt['report_id']}").json()
    assert _deadlines(report) == (due, "verify", verify_due)
    [queued] = client.get("/api/v1/queues/verification").json()["items"]
    assert _deadlines(queued) == (due, "verify", verify_due)
    [row] = client.get("/api/v1/assessment/cases", params=DAY, headers=reader).json()["items"]
    assert _deadlines(row) == (due, "verify", verify_due)
    # The export's 处置时限 is the handling deadline; the stage's has its own column.
    sheet = client.get("/api/v1/assessment/cases/export.csv", params=DAY, headers=reader)
    header, line = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    exported = dict(zip(header, line, strict=True))
    assert exported["处置时限"] == "2026-11-19 10:30:00"
    assert exported["当前环节时限"] == verify_due[:19].replace("T", " ")

    place = client.get(f"/api/v1/cases/{loop.number}").json()
    closed = loop.ok("demo-chief-3", "verify_pass", lon=place["lon"], lat=place["lat"])
    assert _deadlines(closed) == (due, None, None)
