"""Where a person walked is theirs: a district chief's track, check-ins and duty record are
read by those who oversee the district, not by every street and community below it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user, set_chief_segments
from app.core.database import utcnow
from app.settings import Settings
from app.territory.models import Jurisdiction, RoadGrade, Workstation
from tests.support import Headers
from tests.support.patrols import start, walk
from tests.support.places import Spot, on_segment

#: 文博路街道's head, deputy and patroller, and 文博社区's chief.
BELOW = ("demo-chief-1", "demo-chief-2", "demo-chief-3", "demo-patroller")


@pytest.fixture
def trunk(session: Session) -> Spot:
    return on_segment(session, grade=RoadGrade.TRUNK, street="410199001")


@pytest.fixture
def district_chief(session: Session, settings: Settings, trunk: Spot) -> str:
    """A deputy district head who is a road chief of the district, with a trunk segment in
    文博路街道 (a chief above the street's own)."""
    user = create_user(
        session, settings, None,
        UserCreate(username="chief-district", display_name="区级路长（副区长）",
                   password="Chief@2026-long", roles=[Role.ROAD_CHIEF], chief_level=1,
                   jurisdiction_codes=["410199"]),
    )  # fmt: skip
    set_chief_segments(session, None, user.id, [trunk.segment_code], reassign=True)
    return user.username


def test_a_district_chiefs_track_is_not_read_by_the_streets_below(
    client: TestClient, as_user: Headers, session: Session, outsider: str, trunk: Spot,
    district_chief: str,
) -> None:  # fmt: skip
    chief = as_user(district_chief)
    began = utcnow() - timedelta(hours=1)
    patrol = start(client, chief, started_at=began.isoformat())
    url = f"/api/v1/patrols/{patrol['id']}"
    fixes = walk(session, trunk.segment_code, began + timedelta(minutes=1))
    assert client.post(f"{url}/fixes", json={"fixes": fixes}, headers=chief).is_success
    assert client.post(f"{url}/end", headers=chief).status_code == 200
    day = began.date().isoformat()
    duty = {"from": day, "to": day, "chief": district_chief}

    for reader in (district_chief, "demo-dispatcher", "demo-supervisor"):
        headers = as_user(reader)
        assert client.get(url, headers=headers).status_code == 200
        assert client.get(f"{url}/map", headers=headers).status_code == 200
        record = client.get("/api/v1/patrols/compliance", params=duty, headers=headers).json()
        assert {d["username"] for d in record["duties"]} == {district_chief}

    for reader in BELOW:
        headers = as_user(reader)
        for path in (url, f"{url}/map"):
            hidden = client.get(path, headers=headers)
            assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found"), reader
        record = client.get("/api/v1/patrols/compliance", params=duty, headers=headers).json()
        assert record["duties"] == []
        assert record["streets"] == []
        # The segment's own record, clipped to it: who walked it, when, how much; no track.
        history = client.get(f"/api/v1/segments/{trunk.segment_code}/patrols", headers=headers)
        assert history.status_code == 200
        [walked] = [p for p in history.json() if p["patrol_id"] == patrol["id"]]
        assert walked["complete"] is True
        assert set(walked) == {
            "patrol_id", "user_id", "display_name", "started_at", "ended_at",
            "covered_share", "complete",
        }  # fmt: skip

    # Another street's chief does not see the segment at all.
    other = client.get(f"/api/v1/segments/{trunk.segment_code}/patrols", headers=as_user(outsider))
    assert (other.status_code, other.json()["code"]) == (404, "not_found")


def test_a_district_chiefs_check_ins_are_not_read_by_the_street(
    client: TestClient, as_user: Headers, session: Session, district_chief: str
) -> None:
    station = session.scalars(
        select(Workstation)
        .join(Jurisdiction, Workstation.street_id == Jurisdiction.id)
        .where(Jurisdiction.code == "410199001")
        .order_by(Workstation.code)
    ).first()
    assert station is not None
    place = to_shape(station.geom)
    url = f"/api/v1/workstations/{station.code}"
    here = {"lon": place.x, "lat": place.y, "purpose": "meeting"}
    for who in (district_chief, "demo-chief-3"):
        assert client.post(f"{url}/check-in", json=here, headers=as_user(who)).status_code == 201

    def names(reader: str) -> list[str]:
        answer = client.get(f"{url}/check-ins", headers=as_user(reader))
        assert answer.status_code == 200, answer.text
        return [item["display_name"] for item in answer.json()["items"]]

    assert names("demo-dispatcher") == ["三级路长（文博社区）", "区级路长（副区长）"]
    assert names("demo-chief-2") == ["三级路长（文博社区）"]
    assert names("demo-chief-3") == ["三级路长（文博社区）"]
