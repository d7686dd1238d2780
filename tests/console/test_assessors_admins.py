"""Assessors, leaders and admins at the console: KPIs with their formulas, rankings with
flags, the printable bulletin, exports, users, the audit log, the map."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi import FastAPI

from app.core.coords import wgs84_to_gcj02
from app.settings import Settings
from tests.support.cases import Loop
from tests.support.console import Browser


def test_assessor_reads_kpis_with_formulas_and_exports_the_cases(
    browser: Callable[[], Browser], loop: Loop, settings: Settings
) -> None:
    loop.ok("demo-dispatcher", "register")
    assessor = browser()
    assert assessor.sign_in("demo-assessor").headers["location"] == "/console/kpis"
    page = assessor.get("/console/kpis?by=street")
    assert page.status_code == 200
    assert "指标公式与权重" in page.text
    assert "按期处置率" in page.text or "处置" in page.text
    assert "文博路街道" in page.text
    for by in ("unit", "category"):
        assert assessor.get(f"/console/kpis?by={by}").status_code == 200

    link = page.text.split('id="export-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    exported = assessor.get(link.replace("&amp;", "&"))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert any(loop.number in row for row in rows[1:])

    anonymous = browser()
    assert anonymous.get(link.replace("&amp;", "&")).status_code == 303  # to sign in


def test_rankings_and_the_printable_bulletin(browser: Callable[[], Browser]) -> None:
    assessor = browser()
    assessor.sign_in("demo-assessor")
    for kind in ("street", "unit"):
        page = assessor.get(f"/console/rankings?kind={kind}&period=2026-11")
        assert page.status_code == 200
        assert "红黑旗" in page.text
    bulletin = assessor.get("/console/bulletin?period=2026-11")
    assert bulletin.status_code == 200
    assert "路长制工作考核通报（2026-11）" in bulletin.text
    assert "@media print" in assessor.get("/console/static/console.css").text
    bad = assessor.get("/console/rankings?period=not-a-period")
    assert bad.status_code == 422


def test_admin_lists_users_and_reads_the_audit_log(browser: Callable[[], Browser]) -> None:
    admin = browser()
    assert admin.sign_in("demo-admin").headers["location"] == "/console/admin/users"
    users = admin.get("/console/admin/users?role=department_staff")
    assert users.status_code == 200
    assert "demo-staff" in users.text
    assert "demo-chief-3" not in users.text
    audit = admin.get("/console/admin/audit?event=login_succeeded")
    assert audit.status_code == 200
    assert "demo-admin" in audit.text  # this very sign-in, audited as the API's

    staff = browser()
    staff.sign_in("demo-staff")
    assert staff.get("/console/admin/users").status_code == 403
    assert staff.get("/console/admin/audit").status_code == 403


def test_the_map_draws_the_territory_without_tiles_and_shifts_for_gcj02_tiles(
    browser: Callable[[], Browser], app: FastAPI, settings: Settings
) -> None:
    chief = browser()
    chief.sign_in("demo-chief-2")
    page = chief.get("/console/map")
    assert page.status_code == 200
    assert "未配置底图" in page.text
    assert "/console/static/vendor/leaflet-1.9.4/leaflet.js" in page.text
    plain = chief.get("/console/map/territory.geojson").json()
    layers = {f["properties"]["layer"] for f in plain["features"]}
    assert layers == {"jurisdiction", "segment"}
    assert "410199002" not in {f["id"] for f in plain["features"]}  # the next street: unseen
    assert chief.get("/console/static/vendor/leaflet-1.9.4/leaflet.js").status_code == 200
    assert chief.get("/console/static/vendor/htmx-2.0.11/htmx.min.js").status_code == 200

    app.state.settings = settings.model_copy(
        update={
            "console_tile_url": "https://webrd01.is.autonavi.com/{z}/{x}/{y}.png",
            "console_tile_coordinates": "gcj02",
        }
    )
    shifted = chief.get("/console/map/territory.geojson").json()
    segment = next(f for f in plain["features"] if f["properties"]["layer"] == "segment")
    moved = next(f for f in shifted["features"] if f["id"] == segment["id"])
    lon, lat = segment["geometry"]["coordinates"][0]
    assert moved["geometry"]["coordinates"][0] == list(wgs84_to_gcj02(lon, lat))
    assert "GCJ-02" in chief.get("/console/map").text
