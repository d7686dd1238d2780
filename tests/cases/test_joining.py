"""Joining an open case (并案) is for the same problem, seen by someone who may see it:
never a way into another street's case, and never a reason for a department's step to fail."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import multipart, new_key, report_body, stored


def test_another_streets_chief_cannot_join_a_case_by_its_number(
    dispatched: Loop,
    phone: Callable[[str], TestClient],
    outsider: str,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    """The attack: name an enumerable case number in `duplicate_of`, then read the case's
    history, notes and routing through one's own report."""
    before = dispatched.read("demo-dispatcher")
    nothing_yet = stored(session, settings)
    attacker = phone(outsider)
    body = report_body(spot, duplicate_of=dispatched.number)
    refused = multipart(attacker, body, [good_jpeg()])
    assert (refused.status_code, refused.json()["code"]) == (422, "duplicate_case_invalid")
    # The same answer as for a number that does not exist: nothing leaks.
    unknown = multipart(attacker, report_body(spot, duplicate_of="20990101999999"), [good_jpeg()])
    assert refused.json()["title"] == unknown.json()["title"]
    assert stored(session, settings) == nothing_yet
    assert dispatched.read("demo-dispatcher") == before


def test_reporting_at_the_exact_point_of_a_case_out_of_sight_opens_a_case_of_ones_own(
    dispatched: Loop,
    phone: Callable[[str], TestClient],
    as_user: Headers,
    outsider: str,
    spot: Spot,
    good_jpeg: Jpeg,
) -> None:
    before = dispatched.read("demo-dispatcher")
    anonymous = phone(outsider)
    answer = multipart(anonymous, report_body(spot), [good_jpeg()])
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert receipt["duplicate"] is False
    assert receipt["case_number"] != dispatched.number
    # The department's case is untouched: same version, one report.
    after = dispatched.read("demo-dispatcher")
    assert (after["version"], after["report_count"]) == (before["version"], 1)
    # The outsider reads their own report, but not the case (it lies in 文博路街道).
    mine = anonymous.get(f"/api/v1/reports/{receipt['report_id']}", headers=as_user(outsider))
    assert mine.status_code == 200
    detail = mine.json()
    assert detail["case_visible"] is False
    assert detail["history"] == []
    assert detail["lead_units"] == []
    assert detail["territorial_unit"] is None
    assert (detail["handle_due_at"], detail["stage"], detail["stage_due_at"]) == (None,) * 3
    assert detail["segment"] is None
    assert detail["description"] == report_body(spot)["description"]
    # Nor can they look the case up nearby, or open it.
    nearby = anonymous.get(
        "/api/v1/cases/nearby",
        params={"category": "roads.surface", "lon": spot.lon, "lat": spot.lat},
        headers=as_user(outsider),
    )
    assert nearby.status_code == 200
    assert nearby.json() == []
    hidden = anonymous.get(f"/api/v1/cases/{dispatched.number}", headers=as_user(outsider))
    assert hidden.status_code == 404


def test_a_join_must_be_within_the_duplicate_radius(
    dispatched: Loop, phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    patroller = phone("demo-patroller")
    lon, lat = spot.moved(200)
    far = report_body(spot, lon=lon, lat=lat, duplicate_of=dispatched.number)
    refused = multipart(patroller, far, [good_jpeg()])
    assert (refused.status_code, refused.json()["code"]) == (422, "duplicate_case_too_far")
    assert 190 < refused.json()["distance_m"] < 210
    assert refused.json()["max_distance_m"] == 30
    near_lon, near_lat = spot.moved(20)
    near = report_body(spot, lon=near_lon, lat=near_lat, duplicate_of=dispatched.number)
    joined = multipart(patroller, near, [good_jpeg()], key=new_key())
    assert joined.status_code == 201, joined.text
    assert (joined.json()["case_number"], joined.json()["duplicate"]) == (dispatched.number, True)


def test_a_join_does_not_make_a_departments_step_fail(
    dispatched: Loop, phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    """The department read version v; two reports of the same pothole arrive meanwhile
    (one naming the case, one nearby); its sign-for on v still goes through."""
    held = dispatched.version
    patroller = phone("demo-patroller")
    named = report_body(spot, duplicate_of=dispatched.number)
    assert multipart(patroller, named, [good_jpeg()]).json()["duplicate"] is True
    lon, lat = spot.moved(5)
    nearby = multipart(patroller, report_body(spot, lon=lon, lat=lat), [good_jpeg()], key=new_key())
    assert nearby.json()["case_number"] == dispatched.number
    case = dispatched.read("demo-dispatcher")
    assert (case["version"], case["report_count"]) == (held, 3)
    assert [e["kind"] for e in case["history"]].count("duplicate_reported") == 2
    signed = dispatched.ok("demo-staff", "sign_for")
    assert signed["status"] == "in_progress"
