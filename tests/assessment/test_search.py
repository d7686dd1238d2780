"""An assessor looks for cases: by place, state, department, category and what happened to
them; pages through them while the loop goes on; exports the same list for a report."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.database import utcnow
from tests.support import Headers
from tests.support.assessment import inspection
from tests.support.cases import Loop
from tests.support.places import Spot

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today() -> dict[str, str]:
    day = utcnow().astimezone(SHANGHAI).date().isoformat()
    return {"from": day, "to": day}


def find(client: TestClient, as_user: Headers, **params: Any) -> dict[str, Any]:
    answer = client.get("/api/v1/assessment/cases", params={**today(), **params},
                        headers=as_user("demo-assessor"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def numbers(page: dict[str, Any]) -> list[str]:
    return [c["number"] for c in page["items"]]


def test_filters_narrow_the_month_to_the_case_asked_for(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    a, b, c = (month[k].number for k in "abc")
    assert numbers(find(client, as_user, street=spot.street_code)) == [c, b, a]  # newest first
    assert numbers(find(client, as_user, status="closed")) == [a]
    assert numbers(find(client, as_user, status=["rejected", "closed"])) == [c, a]
    assert numbers(find(client, as_user, overdue="true")) == [b]
    assert numbers(find(client, as_user, category="clean")) == [b]  # a group: its categories
    assert numbers(find(client, as_user, category="order.street_vending")) == [c]
    assert numbers(find(client, as_user, unit="transport")) == [a]
    assert numbers(find(client, as_user, reporter_role="road_chief")) == [c, b, a]
    assert numbers(find(client, as_user, reporter_role="patroller")) == []
    row = find(client, as_user, status="closed")["items"][0]
    assert (row["lead_unit"]["code"], row["lead_unit"]["name"]) == ("urban-management", "区城管局")
    assert [u["code"] for u in row["units"]] == ["urban-management", "transport"]
    assert row["closed_at"] is not None
    assert row["segment_code"] == spot.segment_code


def test_pages_hold_their_place_while_cases_move_on(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    first = find(client, as_user, limit=2)
    assert len(first["items"]) == 2
    b = month["b"]  # on the first page: it moves on meanwhile
    b.version = b.read("demo-dispatcher")["version"]
    b.ok("demo-staff", "sign_for")
    second = find(client, as_user, limit=2, cursor=first["next_cursor"])
    assert numbers(first) + numbers(second) == [month[k].number for k in "cba"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"strret": "410199001"}, 422, "validation_failed"),  # a misspelt filter
        ({"street": "nope"}, 422, "unknown_filter_value"),
        ({"unit": "nope"}, 422, "unknown_filter_value"),
        ({"category": "nope.nothing"}, 422, "unknown_filter_value"),
        ({"status": "lost"}, 422, "validation_failed"),
        ({"limit": 500}, 422, "validation_failed"),
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, 422, "bad_period"),
    ],
)
def test_bad_searches_are_refused_with_their_reason(
    client: TestClient, as_user: Headers, params: dict[str, Any], status: int, code: str
) -> None:
    answer = client.get("/api/v1/assessment/cases", params={**today(), **params},
                        headers=as_user("demo-assessor"))  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    export = client.get("/api/v1/assessment/cases/export.csv", params={**today(), **params},
                        headers=as_user("demo-assessor"))  # fmt: skip
    if "limit" in params or "cursor" in params:  # a file has no pages: both are unknown there
        status, code = 422, "validation_failed"
    assert (export.status_code, export.json()["code"]) == (status, code)


def test_the_same_cases_export_as_csv_xlsx_and_geojson(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    expected = [month[k].number for k in "abc"]  # oldest first in a file
    url = "/api/v1/assessment/cases/export"
    params = {**today(), "street": spot.street_code}
    headers = as_user("demo-assessor")

    sheet = client.get(f"{url}.csv", params=params, headers=headers)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/csv")
    assert sheet.content.startswith("\ufeff".encode())  # for Excel
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0][:7] == [
        "案件编号", "状态", "问题类别", "问题类别编码", "国标分类", "国标分类编码", "紧急程度",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == expected
    assert [r[1] for r in rows[1:]] == ["已结案", "已派遣", "不予立案"]

    book = client.get(f"{url}.xlsx", params=params, headers=headers)
    assert book.status_code == 200
    with zipfile.ZipFile(io.BytesIO(book.content)) as archive:
        xml = "".join(archive.read(n).decode() for n in archive.namelist()
                      if n.startswith("xl/") and n.endswith(".xml"))  # fmt: skip
    assert "案件编号" in xml
    assert all(number in xml for number in expected)

    shapes = client.get(f"{url}.geojson", params=params, headers=headers)
    collection = json.loads(shapes.content)
    assert [f["id"] for f in collection["features"]] == expected
    assert collection["features"][0]["geometry"]["coordinates"] == pytest.approx(
        [spot.lon, spot.lat], abs=1e-6
    )


def test_the_heat_map_counts_cases_per_grid_cell_and_segment(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    for level in ("grid_cell", "segment"):
        answer = client.get("/api/v1/assessment/heatmap", params={**today(), "level": level},
                            headers=as_user("demo-assessor"))  # fmt: skip
        assert answer.status_code == 200, answer.text
        heat = answer.json()
        [hot] = heat["features"]  # the three cases lie at one spot
        assert (hot["properties"]["cases"], heat["max_cases"]) == (3, 3)
    assert hot["id"] == spot.segment_code
    assert hot["geometry"]["type"] == "LineString"


def test_api_keys_read_within_their_scope_and_write_nothing(
    client: TestClient, app: FastAPI, month: dict[str, Loop], spot: Spot
) -> None:
    anonymous = TestClient(app)  # no one signed in: the key alone speaks

    def key_for(code: str) -> dict[str, str]:
        body = {"name": f"考评公司同步 {code}", "jurisdiction_codes": [code]}
        made = client.post("/api/v1/admin/api-keys", json=body)
        assert made.status_code == 201, made.text
        return {"X-API-Key": made.json()["key"]}

    district, other_street = key_for("410199"), key_for("410199002")
    assert spot.street_code != "410199002"
    url = "/api/v1/assessment/cases"
    seen = anonymous.get(url, params=today(), headers=district).json()
    assert len(seen["items"]) == 3
    assert anonymous.get(url, params=today(), headers=other_street).json()["items"] == []
    kpi = anonymous.get("/api/v1/assessment/kpis", params={**today(), "by": "street"},
                        headers=other_street).json()  # fmt: skip
    assert kpi["rows"] == []
    walked = anonymous.post("/api/v1/assessment/inspections", json=inspection(spot),
                            headers=district)  # fmt: skip
    assert (walked.status_code, walked.json()["code"]) == (403, "forbidden")
    label = today()["from"][:7]
    closing = anonymous.post(f"/api/v1/admin/assessment/periods/{label}/close", headers=district)
    assert (closing.status_code, closing.json()["code"]) == (403, "forbidden")


def test_exports_name_what_they_code_and_list_only_the_units_at_work(
    client: TestClient, as_user: Headers, dispatched: Loop, spot: Spot
) -> None:
    """Each code has its name beside it; 承办单位 lists the units handling the case, not a
    cooperating unit the centre released (listed apart)."""
    dispatched.ok("demo-dispatcher", "release", unit_code="transport", note="无需协办")
    params = {**today(), "street": spot.street_code}
    headers = as_user("demo-assessor")
    url = "/api/v1/assessment/cases/export"
    sheet = client.get(f"{url}.csv", params=params, headers=headers)
    header, row = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    cell = dict(zip(header, row, strict=True))
    assert (cell["问题类别"], cell["问题类别编码"]) == ("道路路面破损", "roads.surface")
    assert (cell["街道"], cell["街道编码"]) == ("文博路街道", spot.street_code)
    assert (cell["社区"], cell["社区编码"]) == ("文博社区", "410199001001")
    assert cell["路段编码"] == spot.segment_code
    assert cell["路段"] not in ("", spot.segment_code)
    assert (cell["主办单位"], cell["主办单位编码"]) == ("区城管局", "urban-management")
    assert (cell["承办单位"], cell["承办单位编码"]) == ("区城管局", "urban-management")
    assert cell["已释放或退回单位"] == "区交通局"

    [found] = find(client, as_user, street=spot.street_code)["items"]
    assert (found["category_name"], found["street_name"], found["community_name"]) == (
        "道路路面破损", "文博路街道", "文博社区",
    )  # fmt: skip
    assert found["segment_name"] == cell["路段"]
    assert [u["name"] for u in found["units"]] == ["区城管局"]
    assert [u["name"] for u in found["released_units"]] == ["区交通局"]
    shapes = json.loads(client.get(f"{url}.geojson", params=params, headers=headers).content)
    assert shapes["features"][0]["properties"]["units"] == found["units"]
    book = client.get(f"{url}.xlsx", params=params, headers=headers)
    with zipfile.ZipFile(io.BytesIO(book.content)) as archive:
        xml = "".join(archive.read(n).decode() for n in archive.namelist()
                      if n.startswith("xl/") and n.endswith(".xml"))  # fmt: skip
    assert all(name in xml for name in ("问题类别编码", "道路路面破损", "文博路街道", "区城管局"))
