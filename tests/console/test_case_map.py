"""The map at the console: cases as clustered markers (Leaflet.markercluster, vendored),
and on a case's page the places its photos were taken (EXIF) beside the case."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.geo import metres_per_degree
from app.settings import Settings
from tests.support import Jpeg
from tests.support.actors import next_street_supervisor
from tests.support.cases import Loop
from tests.support.console import Browser
from tests.support.places import Spot
from tests.support.reports import multipart, report_body

CLUSTER = "/console/static/vendor/leaflet.markercluster-1.5.3"


def test_the_map_clusters_the_cases_in_sight(
    browser: Callable[[], Browser], loop: Loop, session: Session, settings: Settings
) -> None:
    chief = browser()
    chief.sign_in("demo-chief-2")
    page = chief.get("/console/map")
    assert f"{CLUSTER}/leaflet.markercluster.js" in page.text
    for name in ("leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css"):
        assert chief.get(f"{CLUSTER}/{name}").status_code == 200
    src = unescape(page.text.split('data-cases="')[1].split('"')[0])
    cases = chief.get(src).json()
    mine = next(f for f in cases["features"] if f["id"] == loop.number)
    assert mine["properties"]["href"] == f"/console/cases/{loop.number}"
    case = loop.read("demo-chief-2")
    assert mine["geometry"]["coordinates"] == [case["lon"], case["lat"]]
    assert cases["truncated"] is False

    other = browser()
    other.sign_in(next_street_supervisor(session, settings), "Watch@2026-long")
    theirs = other.get(src).json()
    assert loop.number not in {f["id"] for f in theirs["features"]}
    assert browser().get(src).status_code == 303


def test_a_case_page_shows_where_its_photos_were_taken(
    browser: Callable[[], Browser],
    phone: Callable[[str], TestClient],
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    taken = (spot.lon + 0.0004, spot.lat)  # some 37 m east of the report
    client = phone("demo-chief-3")
    receipt = multipart(client, report_body(spot), [good_jpeg(gps=taken), good_jpeg()]).json()
    number = receipt["case_number"]

    centre = browser()
    centre.sign_in("demo-dispatcher")
    page = centre.get(f"/console/cases/{number}")
    assert page.status_code == 200
    places = json.loads(unescape(page.text.split("data-photos='")[1].split("'")[0]))
    assert len(places) == 1  # the second photo carries no position
    [place] = places
    assert place["lon"] == pytest.approx(taken[0], abs=1e-6)  # EXIF keeps seconds to 1e-4
    assert place["lat"] == pytest.approx(taken[1], abs=1e-6)
    per_lon, per_lat = metres_per_degree(spot.lat)
    naive = math.hypot((place["lon"] - spot.lon) * per_lon, (place["lat"] - spot.lat) * per_lat)
    assert place["metres"] == round(naive)
    assert 30 < place["metres"] < 45
    assert f"距案件约 {place['metres']} 米" in page.text.split('id="photo-places"')[1]

    other = browser()
    other.sign_in(next_street_supervisor(session, settings), "Watch@2026-long")
    assert other.get(f"/console/cases/{number}").status_code == 404
