"""Assessors at the console: the case heat map on the grid, the patrol coverage map, the
field-inspection scores; each as the API answers the same person."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.console.pages import COVERAGE_COLOURS, HEAT_RAMP, heat_step
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.actors import next_street_supervisor
from tests.support.assessment import finding, inspection
from tests.support.cases import Loop
from tests.support.console import Browser
from tests.support.patrols import AFTER_THAT_WEEK, MONDAY, SUNDAY, patrol_on
from tests.support.places import Spot
from tests.support.reports import upload


def test_heat_steps_are_fifths_of_the_busiest() -> None:
    assert [heat_step(n, 10) for n in (0, 1, 2, 3, 4, 5, 8, 9, 10)] == [0, 0, 0, 1, 1, 2, 3, 4, 4]
    assert heat_step(3, 0) == 0


def test_the_heat_map_counts_the_cases_per_cell_as_the_api(
    browser: Callable[[], Browser],
    loop: Loop,
    client: TestClient,
    as_user: Headers,
    session: Session,
    settings: Settings,
) -> None:
    assessor = browser()
    assessor.sign_in("demo-assessor")
    today = datetime.now(settings.zone).date().isoformat()
    span = f"from={today}&to={today}"
    page = assessor.get(f"/console/heatmap?{span}")
    assert page.status_code == 200
    assert "/console/static/vendor/leaflet-1.9.4/leaflet.js" in page.text
    mine = assessor.get(f"/console/heatmap.geojson?level=grid_cell&{span}").json()
    cases = client.get(
        "/api/v1/assessment/cases", params={"from": today, "to": today, "limit": 200},
        headers=as_user("demo-assessor"),
    ).json()["items"]  # fmt: skip
    naive = Counter(c["grid_cell_code"] for c in cases if c["grid_cell_code"])
    assert {f["id"]: f["properties"]["cases"] for f in mine["features"]} == dict(naive)
    cell = next(c["grid_cell_code"] for c in cases if c["number"] == loop.number)
    feature = next(f for f in mine["features"] if f["id"] == cell)
    assert feature["properties"]["color"] == HEAT_RAMP[heat_step(naive[cell], max(naive.values()))]
    assert f'id="heat-{cell}"' in page.text
    segments = assessor.get(f"/console/heatmap.geojson?level=segment&{span}").json()
    assert loop.read("demo-assessor")["segment_code"] in {f["id"] for f in segments["features"]}

    other = browser()
    other.sign_in(next_street_supervisor(session, settings), "Watch@2026-long")
    theirs = other.get(f"/console/heatmap.geojson?level=grid_cell&{span}").json()
    assert cell not in {f["id"] for f in theirs["features"]}
    assert browser().get("/console/heatmap.geojson").status_code == 303


@pytest.mark.time_machine(AFTER_THAT_WEEK)
def test_the_coverage_map_colours_segments_by_patrol(
    browser: Callable[[], Browser],
    client: TestClient,
    as_user: Headers,
    session: Session,
    settings: Settings,
    spot: Spot,
) -> None:
    patrol_on(client, as_user("demo-chief-3"), session, settings, spot.segment_code, MONDAY)
    span = f"from={MONDAY}&to={SUNDAY}"
    chief = browser()
    chief.sign_in("demo-chief-2")
    page = chief.get(f"/console/coverage?{span}&street={spot.street_code}")
    assert page.status_code == 200
    found = chief.get(f"/console/coverage.geojson?{span}&street={spot.street_code}").json()
    api = client.get(
        "/api/v1/patrols/coverage-map",
        params={"from": MONDAY.isoformat(), "to": SUNDAY.isoformat(), "street": spot.street_code},
        headers=as_user("demo-chief-2"),
    ).json()
    assert [f["properties"]["coverage"] for f in found["features"]] == [
        f["properties"]["coverage"] for f in api["features"]
    ]
    walked = next(
        f for f in found["features"] if f["properties"]["segment_code"] == spot.segment_code
    )
    assert walked["properties"]["color"] == COVERAGE_COLOURS["complete"]
    tally = Counter(f["properties"]["coverage"] for f in api["features"])
    assert f"完整巡查 {tally['complete']} 段" in page.text
    assert f"未巡查 {tally['none']} 段" in page.text

    other = browser()
    other.sign_in(next_street_supervisor(session, settings), "Watch@2026-long")
    theirs = other.get(f"/console/coverage.geojson?{span}").json()
    assert spot.segment_code not in {f["properties"]["segment_code"] for f in theirs["features"]}
    assert other.get(f"/console/coverage?from={MONDAY}&to=2027-03-01").status_code == 422
    assert browser().get(f"/console/coverage?{span}").status_code == 303


def test_inspection_scores_per_segment_street_and_unit(
    browser: Callable[[], Browser],
    client: TestClient,
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    headers = as_user("demo-assessor")
    photo = upload(client, good_jpeg(), headers=headers)["id"]
    made = client.post(
        "/api/v1/assessment/inspections",
        json=inspection(spot, finding(spot, "S01", photo, count=2)),
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assessor = browser()
    assessor.sign_in("demo-assessor")
    page = assessor.get("/console/inspections?by=segment")
    row = page.text.split(f'id="score-{spot.segment_code}"')[1].split("</tr>")[0]
    assert "98.00" in row
    streets = assessor.get("/console/inspections?by=street").text
    assert f'id="score-{spot.street_code}"' in streets
    assert assessor.get("/console/inspections?by=unit").status_code == 200
    assert assessor.get("/console/inspections?by=nobody").status_code == 422

    other = browser()
    other.sign_in(next_street_supervisor(session, settings), "Watch@2026-long")
    assert f'id="score-{spot.segment_code}"' not in other.get("/console/inspections").text
    assert browser().get("/console/inspections").status_code == 303
