"""Who may verify a case is one rule: the step, the verification queue and the inbox agree.
A segment's chief who cannot open the case is neither asked nor shown it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, set_chief_segments
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.places import Spot
from tests.support.reports import multipart, report_body


def numbers(client: TestClient, url: str, headers: dict[str, str]) -> list[str]:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return [item.get("number") or item.get("case_number") for item in items]


def test_a_segments_chief_who_cannot_open_the_case_is_not_asked_to_verify_it(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    session: Session,
    settings: Settings,
    spot: Spot,
    good_jpeg: Jpeg,
) -> None:
    """The lane of 文博社区 is given to a chief of the next community (锦绣社区), who sees
    the street's segments but not 文博社区's cases."""
    neighbour = create_user(
        session, settings, None,
        UserCreate(username="chief-jinxiu", display_name="三级路长（锦绣社区）",
                   password="Chief@2026-long", roles=[Role.ROAD_CHIEF], chief_level=3,
                   jurisdiction_codes=["410199001002"]),
    )  # fmt: skip
    set_chief_segments(session, None, neighbour.id, [spot.segment_code], reassign=True)
    patroller = phone("demo-patroller")
    body = report_body(spot, category_code="clean.street_cleaning", fixed_on_spot=True)
    fixed = multipart(patroller, body, [good_jpeg()], after=[good_jpeg()])
    assert fixed.status_code == 201, fixed.text
    number = fixed.json()["case_number"]
    assert fixed.json()["case_status"] == "awaiting_verification"

    queue = "/api/v1/queues/verification"
    outsider = as_user("chief-jinxiu")
    assert number not in numbers(patroller, queue, outsider)
    assert number not in numbers(patroller, "/api/v1/inbox", outsider)
    hidden = patroller.get(f"/api/v1/cases/{number}", headers=outsider)
    assert hidden.status_code == 404
    refused = patroller.post(
        f"/api/v1/cases/{number}/actions/verify_pass",
        json={"version": 1, "lon": spot.lon, "lat": spot.lat},
        headers=outsider,
    )
    assert refused.status_code == 404

    # The street's level-2 chief of the lane may: shown in the queue, and verifies.
    street_chief = as_user("demo-chief-2")
    assert number in numbers(patroller, queue, street_chief)
    version = patroller.get(f"/api/v1/cases/{number}", headers=street_chief).json()["version"]
    passed = patroller.post(
        f"/api/v1/cases/{number}/actions/verify_pass",
        json={"version": version, "lon": spot.lon, "lat": spot.lat},
        headers=street_chief,
    )
    assert passed.status_code == 200, passed.text
    assert passed.json()["status"] == "closed"
