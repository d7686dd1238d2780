"""The road team meets at its workstation (路长工作站): each checks in and out there."""

from __future__ import annotations

from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.territory.models import Jurisdiction, Workstation
from tests.support import Headers
from tests.support.places import Spot


def test_a_chief_checks_in_and_out_at_the_workstation(
    client: TestClient, as_user: Headers, session: Session, spot: Spot
) -> None:
    station = session.scalars(
        select(Workstation)
        .join(Jurisdiction, Workstation.street_id == Jurisdiction.id)
        .where(Jurisdiction.code == spot.street_code)
        .order_by(Workstation.code)
    ).first()
    assert station is not None
    place = to_shape(station.geom)
    chief = as_user("demo-chief-3")
    url = f"/api/v1/workstations/{station.code}"
    here = {"lon": place.x + 0.0003, "lat": place.y}  # about 27 m east

    far = client.post(f"{url}/check-in", json={"lon": place.x + 0.01, "lat": place.y},
                      headers=chief)  # fmt: skip
    assert (far.status_code, far.json()["code"]) == (422, "too_far_from_workstation")
    key = {**chief, "Idempotency-Key": "4b7c1e2a-0000-4000-8000-000000000001"}
    came = client.post(f"{url}/check-in", json={**here, "purpose": "meeting"}, headers=key)
    assert came.status_code == 201, came.text
    assert 20 < came.json()["in_distance_m"] < 35
    retried = client.post(f"{url}/check-in", json={**here, "purpose": "meeting"}, headers=key)
    assert (retried.status_code, retried.json()["id"]) == (201, came.json()["id"])
    assert retried.headers["Idempotent-Replayed"] == "true"
    twice = client.post(f"{url}/check-in", json=here, headers=chief)
    assert (twice.status_code, twice.json()["code"]) == (409, "already_checked_in")

    left = client.post(f"{url}/check-out", json=here, headers=chief)
    assert left.status_code == 200, left.text
    assert left.json()["minutes"] >= 0
    again = client.post(f"{url}/check-out", json=here, headers=chief)
    assert (again.status_code, again.json()["code"]) == (409, "not_checked_in")
    history = client.get(f"{url}/check-ins", headers=as_user("demo-chief-2")).json()
    assert history["items"][0]["display_name"] == "三级路长（文博社区）"
    assert history["items"][0]["checked_out_at"] is not None
    unknown = client.post("/api/v1/workstations/NOPE/check-in", json=here, headers=chief)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
