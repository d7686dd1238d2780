"""A third-party assessor walks a lane with the checklist: deductions placed, photographed,
charged to departments, one reported as a case; the segment's score and 千百十 grade follow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.assessment.models import Inspection, InspectionDeduction, InspectionPhoto
from app.cases.models import Case
from app.core.database import utcnow
from app.reports.models import Report
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.assessment import finding, inspection
from tests.support.places import Spot
from tests.support.reports import new_key, upload

SHANGHAI = ZoneInfo("Asia/Shanghai")


def stored(session: Session) -> list[int]:
    return [session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Inspection, InspectionDeduction, InspectionPhoto, Report, Case)]  # fmt: skip


def scores(client: TestClient, as_user: Headers, by: str) -> list[dict[str, Any]]:
    day = utcnow().astimezone(SHANGHAI).date().isoformat()
    answer = client.get("/api/v1/assessment/inspection-scores", headers=as_user("demo-dispatcher"),
                        params={"by": by, "from": day, "to": day})  # fmt: skip
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["rows"]
    return rows


# Mid-morning: the inspection began 45 minutes ago, and the scores are read for today (run
# just after midnight, it began yesterday and today had no score).
@pytest.mark.time_machine("2026-11-18T10:30:00+08:00")
def test_an_assessor_deducts_and_one_finding_becomes_a_case(
    client: TestClient, as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    assessor = as_user("demo-assessor")
    photo = upload(client, good_jpeg(), headers=assessor)["id"]
    body = inspection(
        spot,
        finding(spot, "R03", photo, note="井盖缺失", open_case=True),
        finding(spot, "S01", photo, count=2),
    )
    key = {**assessor, "Idempotency-Key": new_key()}
    made = client.post("/api/v1/assessment/inspections", json=body, headers=key)
    assert made.status_code == 201, made.text
    record = made.json()
    assert (record["deducted"], record["score"], record["has_track"]) == (5.0, 95.0, True)
    manhole, litter = record["deductions"]
    assert (manhole["item_name"], manhole["points"], manhole["category_code"]) == (
        "井盖缺失破损",
        3.0,
        "R",
    )
    assert (litter["count"], litter["points"], litter["case_number"]) == (2, 2.0, None)
    assert manhole["unit_code"]  # charged by the routing rules
    assert litter["unit_code"]
    assert [p["id"] for p in manhole["photos"]] == [photo]
    case = client.get(f"/api/v1/cases/{manhole['case_number']}", headers=assessor).json()
    assert (case["category_code"], case["source"]) == ("roads.manhole", "inspection")

    again = client.post("/api/v1/assessment/inspections", json=body, headers=key)
    assert again.json()["id"] == record["id"]
    assert client.get(f"/api/v1/assessment/inspections/{record['id']}",
                      headers=as_user("demo-chief-3")).json() == record  # fmt: skip

    # A second inspection the same day: the segment's score is the mean, its grade follows.
    worse = inspection(spot, finding(spot, "C01", photo, count=4))  # 4 × 3 points
    assert client.post("/api/v1/assessment/inspections", json=worse,
                       headers=assessor).json()["score"] == 88.0  # fmt: skip
    [segment] = [r for r in scores(client, as_user, "segment") if r["key"] == spot.segment_code]
    assert (segment["inspections"], segment["score"], segment["grade"]) == (2, 91.5, "outstanding")
    [street] = [r for r in scores(client, as_user, "street") if r["key"] == spot.street_code]
    assert street["score"] == 91.5
    units = {r["key"]: r for r in scores(client, as_user, "unit")}
    charged = sum(100 - r["score"] for r in units.values()) * 2  # points per inspection × 2
    assert charged == pytest.approx(17.0)


def test_bad_inspections_are_refused_and_store_nothing(
    client: TestClient, as_user: Headers, spot: Spot, session: Session, settings: Settings,
    good_jpeg: Jpeg,
) -> None:  # fmt: skip
    assessor = as_user("demo-assessor")
    photo = upload(client, good_jpeg(), headers=assessor)["id"]
    now = utcnow()
    bad: list[tuple[dict[str, Any], int, str]] = [
        (inspection(spot, finding(spot, "Z99", photo)), 422, "unknown_checklist_item"),
        (inspection(spot, {**finding(spot, "R01", photo), "photo_ids": []}), 422,
         "deduction_photo_required"),
        (inspection(spot, finding(spot, "R01", photo, lon=spot.moved(800)[0])), 422,
         "deduction_off_segment"),
        (inspection(spot, ended_at=(now - timedelta(hours=2)).isoformat()), 422,
         "bad_inspection_time"),
        (inspection(spot, started_at=(now - timedelta(days=5)).isoformat()), 422,
         "bad_inspection_time"),
        (inspection(spot, ended_at=(now + timedelta(hours=1)).isoformat()), 422,
         "device_time_in_future"),
        (inspection(spot, segment_code="RS-NOPE"), 404, "not_found"),
        (inspection(spot, finding(spot, "R01", photo, lon=10.0, lat=10.0)), 422,
         "outside_service_area"),
    ]  # fmt: skip
    before = stored(session)
    for body, status, code in bad:
        answer = client.post("/api/v1/assessment/inspections", json=body, headers=assessor)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
        assert stored(session) == before
    chief = client.post("/api/v1/assessment/inspections", json=inspection(spot),
                        headers=as_user("demo-chief-3"))  # fmt: skip
    assert (chief.status_code, chief.json()["code"]) == (403, "forbidden")
    assert stored(session) == before


def test_the_checklist_is_guanchengs_shape(client: TestClient, as_user: Headers) -> None:
    shipped = client.get("/api/v1/assessment/checklist", headers=as_user("demo-assessor")).json()
    assert len(shipped["categories"]) == 10
    assert sum(len(c["items"]) for c in shipped["categories"]) == 46
    assert all(i["deduction"] > 0 for c in shipped["categories"] for i in c["items"])
