"""A road chief walks a lane with the phone recording: resent, late and bad fixes are
handled, and the end shows how far, how long and how much of which segments."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core.coords import wgs84_to_gcj02
from app.core.database import utcnow
from app.core.geo import geodesic_length_m
from app.patrols.models import Patrol, PatrolFix
from app.patrols.service import remeasure_due
from app.settings import Settings
from app.territory.models import RoadSegment
from tests.support import Headers
from tests.support.patrols import start, walk
from tests.support.places import Spot


def test_a_chief_patrols_a_lane_and_the_walk_becomes_evidence(
    client: TestClient, as_user: Headers, session: Session, spot: Spot
) -> None:
    chief = as_user("demo-chief-3")
    began = utcnow() - timedelta(hours=1)
    patrol = start(client, chief, started_at=began.isoformat())
    assert (patrol["status"], patrol["fix_count"]) == ("active", 0)
    again = client.post("/api/v1/patrols", json={}, headers=chief)
    assert (again.status_code, again.json()["code"]) == (409, "patrol_in_progress")

    fixes = walk(session, spot.segment_code, began + timedelta(minutes=1))
    half = len(fixes) // 2
    url = f"/api/v1/patrols/{patrol['id']}/fixes"
    # The second half arrives first (an offline queue), then the first, then it is resent.
    second = client.post(url, json={"fixes": fixes[half:]}, headers=chief).json()
    assert (second["accepted"], second["duplicates"]) == (len(fixes) - half, 0)
    client.post(url, json={"fixes": fixes[:half]}, headers=chief)
    resent = client.post(url, json={"fixes": fixes}, headers=chief).json()
    assert (resent["accepted"], resent["duplicates"]) == (0, len(fixes))

    last = datetime.fromisoformat(fixes[-1]["recorded_at"])
    bad = [
        # 2 km east within five seconds of a good fix: a jump.
        {"recorded_at": (last + timedelta(seconds=5)).isoformat(),
         "lon": spot.moved(2000)[0], "lat": spot.lat, "accuracy_m": 5},
        {"recorded_at": (last + timedelta(seconds=10)).isoformat(),
         "lon": spot.lon, "lat": spot.lat, "accuracy_m": 400},
        {"recorded_at": (utcnow() + timedelta(hours=3)).isoformat(),
         "lon": spot.lon, "lat": spot.lat, "accuracy_m": 5},
    ]  # fmt: skip
    flagged = client.post(url, json={"fixes": bad}, headers=chief).json()
    assert flagged["flagged"]["poor_accuracy"] == 1
    assert flagged["refused"] == {"clock_ahead": 1, "before_start": 0, "after_end": 0}

    ended = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief).json()
    assert ended["status"] == "ended"
    assert ended["fix_count"] == len(fixes) + 2  # the one from the future was not stored
    assert ended["kept_fix_count"] == len(fixes)
    assert ended["flagged"] == {
        "poor_accuracy": 1, "impossible_speed": 1, "clock_ahead": 0,
        "before_start": 0, "after_end": 0,
    }  # fmt: skip
    assert ended["remeasure_pending"] is False
    line = to_shape(
        session.scalar(select(RoadSegment.geom).where(RoadSegment.code == spot.segment_code))
    )
    assert ended["distance_m"] == pytest.approx(geodesic_length_m(line), rel=0.02)
    assert ended["duration_s"] == pytest.approx(3600, abs=60)
    walked = next(s for s in ended["segments"] if s["segment_code"] == spot.segment_code)
    assert walked["covered_share"] > 0.95
    assert walked["complete"] is True
    assert ended["segments"][0]["segment_code"] == spot.segment_code  # most covered first

    twice = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief)
    assert (twice.status_code, twice.json()["code"]) == (409, "patrol_ended")
    shown = client.get(f"/api/v1/patrols/{patrol['id']}/map", headers=chief).json()
    kinds = [f["properties"]["kind"] for f in shown["features"]]
    assert kinds[0] == "track"
    assert "covered" in kinds
    assert shown["features"][0]["geometry"]["type"] == "LineString"
    history = client.get(f"/api/v1/segments/{spot.segment_code}/patrols", headers=chief).json()
    assert history[0]["patrol_id"] == patrol["id"]
    assert history[0]["display_name"] == "三级路长（文博社区）"
    # The street's level-2 chief sees it too; the dispatcher of the district as well.
    assert (
        client.get(f"/api/v1/patrols/{patrol['id']}", headers=as_user("demo-chief-2")).status_code
        == 200
    )


def test_fixes_are_stored_as_sent_whatever_their_map_and_accuracy(
    client: TestClient, as_user: Headers, session: Session, spot: Spot
) -> None:
    """A fix without accuracy, one in GCJ-02 (from a Chinese map SDK), and the same moment
    twice in one batch: each stored once, in WGS 84, with what the phone said."""
    chief = as_user("demo-chief-3")
    began = utcnow() - timedelta(minutes=30)
    patrol = start(client, chief, started_at=began.isoformat())
    at = [began + timedelta(seconds=s) for s in (10, 20)]
    gcj_lon, gcj_lat = wgs84_to_gcj02(spot.lon, spot.lat)
    batch = [
        {"recorded_at": at[0].isoformat(), "lon": spot.lon, "lat": spot.lat},
        {"recorded_at": at[1].astimezone(ZoneInfo("Asia/Shanghai")).isoformat(),
         "lon": gcj_lon, "lat": gcj_lat, "coordinate_system": "gcj02", "accuracy_m": 4.5},
        {"recorded_at": at[1].isoformat(), "lon": gcj_lon, "lat": gcj_lat,
         "coordinate_system": "gcj02", "accuracy_m": 4.5},
    ]  # fmt: skip
    answer = client.post(f"/api/v1/patrols/{patrol['id']}/fixes", json={"fixes": batch},
                         headers=chief).json()  # fmt: skip
    assert (answer["accepted"], answer["duplicates"]) == (2, 1)
    stored = session.scalars(
        select(PatrolFix).where(PatrolFix.patrol_id == patrol["id"]).order_by(PatrolFix.recorded_at)
    ).all()
    assert [f.recorded_at for f in stored] == at
    assert [(f.accuracy_m, f.coordinate_system.value, f.flag) for f in stored] == [
        (None, "wgs84", None), (4.5, "gcj02", None),
    ]  # fmt: skip
    for fix in stored:
        point = to_shape(fix.geom)
        assert (point.x, point.y) == pytest.approx((spot.lon, spot.lat), abs=1e-5)


def test_bad_fixes_and_other_peoples_patrols_are_refused(
    client: TestClient, as_user: Headers, session: Session, spot: Spot
) -> None:
    chief = as_user("demo-chief-3")
    patrol = start(client, chief)
    url = f"/api/v1/patrols/{patrol['id']}/fixes"
    fix = {"recorded_at": utcnow().isoformat(), "lon": spot.lon, "lat": spot.lat}
    nowhere = client.post(
        url, json={"fixes": [fix, {**fix, "recorded_at": utcnow().isoformat(), "lon": 2.35}]},
        headers=chief,
    )  # fmt: skip
    assert (nowhere.status_code, nowhere.json()["code"]) == (422, "invalid_fix")
    assert nowhere.json()["index"] == 1
    stored = session.scalar(select(func.count()).where(PatrolFix.patrol_id == patrol["id"]))
    assert stored == 0  # the good fix of a refused batch is not kept either

    other = client.post(url, json={"fixes": [fix]}, headers=as_user("demo-chief-2"))
    assert (other.status_code, other.json()["code"]) == (403, "not_your_patrol")
    backdated = client.post(
        "/api/v1/patrols",
        json={"started_at": (utcnow() - timedelta(days=3)).isoformat()},
        headers=as_user("demo-chief-1"),
    )
    assert (backdated.status_code, backdated.json()["code"]) == (422, "start_too_old")
    staff = client.post("/api/v1/patrols", json={}, headers=as_user("demo-staff"))
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")

    client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief)
    session.execute(
        update(Patrol).where(Patrol.id == patrol["id"])
        .values(ended_at=utcnow() - timedelta(hours=2))
    )  # fmt: skip
    late = client.post(url, json={"fixes": [fix]}, headers=chief)
    assert (late.status_code, late.json()["code"]) == (409, "patrol_ended")


def test_late_fixes_are_measured_later_and_once(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot
) -> None:
    """An offline queue catching up after the end: its fixes join the track, but measuring
    a whole patrol again is not done in the phone's request (it could take seconds, and
    hold every writer meanwhile); the background job does it once for all the batches."""
    chief = as_user("demo-chief-3")
    began = utcnow() - timedelta(minutes=30)
    patrol = start(client, chief, started_at=began.isoformat())
    fixes = walk(session, spot.segment_code, began)
    url = f"/api/v1/patrols/{patrol['id']}/fixes"
    client.post(url, json={"fixes": fixes[:3]}, headers=chief)
    short = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief).json()
    half = (len(fixes) + 3) // 2
    for batch in (fixes[3:half], fixes[half:]):  # the phone was offline
        late = client.post(url, json={"fixes": batch}, headers=chief).json()
        assert late["accepted"] == len(batch)
    waiting = client.get(f"/api/v1/patrols/{patrol['id']}", headers=chief).json()
    assert (waiting["distance_m"], waiting["kept_fix_count"]) == (short["distance_m"], 3)
    assert (waiting["fix_count"], waiting["remeasure_pending"]) == (len(fixes), True)

    assert remeasure_due(session, settings) == 1  # two batches, one measure
    full = client.get(f"/api/v1/patrols/{patrol['id']}", headers=chief).json()
    assert full["kept_fix_count"] == len(fixes)
    assert full["distance_m"] > short["distance_m"]
    assert full["remeasure_pending"] is False
    assert remeasure_due(session, settings) == 0


def test_a_patrol_holds_only_as_many_fixes_as_its_time_allows(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot
) -> None:
    """Sixty fixes a minute of the patrol, plus one batch: a patrol started ten minutes
    ago holds 1,100, however finely its fixes are spaced."""
    chief = as_user("demo-chief-3")
    began = utcnow() - timedelta(minutes=10)
    patrol = start(client, chief, started_at=began.isoformat())
    url = f"/api/v1/patrols/{patrol['id']}/fixes"

    def batch(first: int, n: int) -> dict[str, Any]:
        return {"fixes": [
            {"recorded_at": (began + timedelta(milliseconds=10 * i)).isoformat(),
             "lon": spot.lon, "lat": spot.lat, "accuracy_m": 5}
            for i in range(first, first + n)
        ]}  # fmt: skip

    for first in (0, 500):
        assert client.post(url, json=batch(first, 500), headers=chief).json()["accepted"] == 500
    over = client.post(url, json=batch(1000, 500), headers=chief)
    assert (over.status_code, over.json()["code"]) == (422, "too_many_fixes")
    assert over.json()["stored"] == 1000
    assert 1100 <= over.json()["limit"] < 1110
    stored = session.scalar(select(func.count()).where(PatrolFix.patrol_id == patrol["id"]))
    assert stored == 1000  # the refused batch left nothing
    assert client.post(url, json=batch(1000, 100), headers=chief).json()["accepted"] == 100
    shown = client.get(f"/api/v1/patrols/{patrol['id']}", headers=chief).json()
    assert shown["fix_count"] == 1100


def test_fixes_outside_the_patrols_time_are_refused(
    client: TestClient, as_user: Headers, session: Session, spot: Spot
) -> None:
    chief = as_user("demo-chief-3")
    began = utcnow() - timedelta(minutes=30)
    patrol = start(client, chief, started_at=began.isoformat())
    url = f"/api/v1/patrols/{patrol['id']}/fixes"

    def fix(at: datetime) -> dict[str, Any]:
        return {"recorded_at": at.isoformat(), "lon": spot.lon, "lat": spot.lat}

    answer = client.post(url, headers=chief, json={"fixes": [
        fix(began + timedelta(minutes=1)), fix(began - timedelta(hours=2)),
        fix(utcnow() + timedelta(hours=1)),
    ]}).json()  # fmt: skip
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    assert answer["refused"] == {"clock_ahead": 1, "before_start": 1, "after_end": 0}
    ended = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief).json()
    late = client.post(url, headers=chief, json={"fixes": [
        fix(began + timedelta(minutes=2)),
        fix(datetime.fromisoformat(ended["ended_at"]) + timedelta(seconds=30)),
    ]}).json()  # fmt: skip
    assert late["refused"] == {"clock_ahead": 0, "before_start": 0, "after_end": 1}
    stored = session.scalar(select(func.count()).where(PatrolFix.patrol_id == patrol["id"]))
    assert stored == 2  # only the fixes that belong to the walk


def test_pausing_takes_the_pause_out_of_the_duration(
    client: TestClient, as_user: Headers, session: Session
) -> None:
    chief = as_user("demo-chief-3")
    patrol = start(client, chief, started_at=(utcnow() - timedelta(minutes=20)).isoformat())
    paused = client.post(f"/api/v1/patrols/{patrol['id']}/pause", headers=chief).json()
    assert paused["status"] == "paused"
    twice = client.post(f"/api/v1/patrols/{patrol['id']}/pause", headers=chief)
    assert (twice.status_code, twice.json()["code"]) == (409, "patrol_not_active")
    session.execute(
        update(Patrol).where(Patrol.id == patrol["id"])
        .values(paused_at=utcnow() - timedelta(minutes=15))
    )  # fmt: skip
    client.post(f"/api/v1/patrols/{patrol['id']}/resume", headers=chief)
    ended = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=chief).json()
    assert ended["duration_s"] == pytest.approx(5 * 60, abs=30)
    assert ended["distance_m"] == 0
    assert ended["segments"] == []


def test_reports_made_on_a_patrol_are_its_findings(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    session: Session,
    settings: Any,
    spot: Spot,
    good_jpeg: Callable[..., bytes],
) -> None:
    from tests.support.reports import multipart, report_body, stored

    chief = phone("demo-chief-3")
    patrol = start(chief, as_user("demo-chief-3"))
    receipt = multipart(chief, report_body(spot, patrol_id=patrol["id"]), [good_jpeg()])
    assert receipt.status_code == 201, receipt.text
    shown = chief.get(f"/api/v1/patrols/{patrol['id']}").json()
    assert shown["report_ids"] == [receipt.json()["report_id"]]

    other = start(chief, as_user("demo-chief-2"))
    before = stored(session, settings)
    refused = multipart(
        chief, report_body(spot, patrol_id=other["id"], lon=spot.moved(200)[0]), [good_jpeg()]
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "patrol_mismatch")
    assert stored(session, settings) == before


def test_patrols_are_measured_again_from_the_command_line(empty_database: Any) -> None:
    """For deployments that run the jobs from cron (ROADCHIEF_BACKGROUND_INTERVAL_SECONDS=0)."""
    result = CliRunner().invoke(cli, ["patrols", "remeasure"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"remeasured": 0}


def test_my_patrols_list_finds_the_running_one_again(
    client: TestClient, as_user: Headers, app: Any, outsider: str
) -> None:
    """A phone that lost the running patrol's id finds it in its own list, newest first."""
    chief = as_user("demo-chief-3")
    now = utcnow()
    older = start(client, chief, started_at=(now - timedelta(hours=3)).isoformat())
    assert client.post(f"/api/v1/patrols/{older['id']}/end", headers=chief).status_code == 200
    running = start(client, chief)
    start(client, as_user("demo-chief-2"))  # someone else's patrol is not in my list

    mine = client.get("/api/v1/patrols/mine", headers=chief, params={"limit": 1})
    assert mine.status_code == 200, mine.text
    assert [(p["id"], p["status"]) for p in mine.json()["items"]] == [(running["id"], "active")]
    rest = client.get("/api/v1/patrols/mine", headers=chief,
                      params={"limit": 1, "cursor": mine.json()["next_cursor"]}).json()  # fmt: skip
    assert [p["id"] for p in rest["items"]] == [older["id"]]
    assert rest["next_cursor"] is None
    active = client.get("/api/v1/patrols/mine", headers=chief, params={"status": "active"})
    assert [p["id"] for p in active.json()["items"]] == [running["id"]]
    assert active.json()["items"][0]["started_at"].endswith("+08:00")

    assert client.get("/api/v1/patrols/mine", headers=as_user(outsider)).json()["items"] == []
    staff = client.get("/api/v1/patrols/mine", headers=as_user("demo-staff"))
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")  # patrols no road
    with TestClient(app) as nobody:
        assert nobody.get("/api/v1/patrols/mine").status_code == 401
