"""What department staff work from: a task row that carries what its next step needs, and a
history that says which unit each step concerned."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support import Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import upload


def _row(client: TestClient, headers: dict[str, str], number: str) -> dict[str, Any]:
    answer = client.get("/api/v1/tasks", headers=headers)
    assert answer.status_code == 200, answer.text
    row: dict[str, Any] = next(i for i in answer.json()["items"] if i["case_number"] == number)
    return row


def test_a_task_row_carries_what_its_next_step_needs(
    dispatched: Loop, spot: Spot, app: FastAPI, outsider: str
) -> None:
    loop, staff = dispatched, dispatched.as_user("demo-staff")
    row = _row(loop.client, staff, loop.number)
    assert row["case_version"] == loop.version
    assert (row["lon"], row["lat"]) == pytest.approx((spot.lon, spot.lat))
    assert (row["segment_code"], row["street_code"]) == (spot.segment_code, spot.street_code)
    assert row["unit"]["code"] == "urban-management"
    assert row["actions"] == ["sign_for", "return", "request_extension"]
    assert row["extension_requested_until"] is None

    # The step from the row alone: its version and its unit, no other read first.
    signed = loop.client.post(
        f"/api/v1/cases/{row['case_number']}/actions/sign_for",
        headers={**staff, "If-Match": f'"{row["case_version"]}"'},
        json={"unit_code": row["unit"]["code"]},
    )
    assert signed.status_code == 200, signed.text
    after = _row(loop.client, staff, loop.number)
    assert after["case_version"] == row["case_version"] + 1
    assert after["actions"] == ["return", "request_extension", "feed_back"]

    # Nobody reads a unit's queue from outside it.
    with TestClient(app) as nobody:
        assert nobody.get("/api/v1/tasks").status_code == 401
    other = loop.client.get("/api/v1/tasks", headers=loop.as_user(outsider))
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    other_unit = loop.client.get("/api/v1/tasks", headers=staff, params={"unit": "transport"})
    assert (other_unit.status_code, other_unit.json()["code"]) == (403, "forbidden")


def test_the_history_names_the_unit_each_step_concerned(loop: Loop, good_jpeg: Jpeg) -> None:
    loop.ok("demo-dispatcher", "register")
    helpers = ["transport", "forestry-landscape", "housing-construction"]
    loop.ok("demo-dispatcher", "dispatch", units=["urban-management", *helpers], reason="多部门")
    for code in helpers:
        loop.ok("demo-dispatcher", "release", unit_code=code, note="无需协办")
    loop.ok("demo-staff", "sign_for")
    fix = upload(loop.client, good_jpeg(), headers=loop.as_user("demo-staff"))["id"]
    loop.ok("demo-staff", "feed_back", note="已修补", photo_ids=[fix])

    history = loop.read("demo-dispatcher")["history"]
    released = [e["unit"]["code"] for e in history if e["kind"] == "released"]
    assert released == helpers  # three releases, three units: no longer alike
    lead = {"code": "urban-management", "name": "区城管局", "kind": "functional_department"}
    assert [e["unit"] for e in history if e["kind"] in ("signed_for", "fed_back")] == [lead] * 2
    assert all(e["unit"] is None for e in history if e["kind"] in ("reported", "dispatched"))
