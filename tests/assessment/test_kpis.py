"""An assessor reads a period's KPIs: three cases of one street, one closed on time, one
overdue, one rejected, and what that makes of each rate, per street and per department."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessment.cli import DOC_PATH
from app.assessment.kpis import kpi_markdown, parse_weights
from app.cases.facts import rebuild
from app.cases.models import Case, CaseEvent, CaseTask
from app.core.database import utcnow
from app.reports.models import Report
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import upload

SHANGHAI = ZoneInfo("Asia/Shanghai")  # periods are local days


def kpis(client: TestClient, as_user: Headers, day: date, **params: Any) -> dict[str, Any]:
    period = {"from": day.isoformat(), "to": day.isoformat(), **params}
    answer = client.get("/api/v1/assessment/kpis", headers=as_user("demo-assessor"), params=period)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_period_of_three_cases_per_street_and_per_department(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    today = utcnow().astimezone(SHANGHAI).date()
    report = kpis(client, as_user, today, by="street", street=spot.street_code)
    assert report["complete"] is False  # today is still running
    [street] = report["rows"]
    assert street["key"] == spot.street_code
    counts = street["counts"]
    assert {k: counts[k] for k in ("reports", "cases", "registered", "rejected", "dispatched",
                                   "fed_back", "closed", "overdue")} == {
        "reports": 3, "cases": 3, "registered": 2, "rejected": 1, "dispatched": 3,
        "fed_back": 2, "closed": 1, "overdue": 1,
    }  # fmt: skip
    rates = street["rates"]
    assert rates["closure"] == 0.5  # 1 closed of 2 registered
    assert rates["on_time_closure"] == 0.5
    assert rates["on_time_handling"] == pytest.approx(2 / 3, abs=1e-4)  # B is late, not done
    assert rates["on_time_sign_for"] == pytest.approx(2 / 3, abs=1e-4)
    assert (rates["rework"], rates["extension"], rates["whistle_on_time"]) == (0.0, 0.0, None)
    assert street["handling_hours_median"] is not None
    # 30·2/3 + 20·0.5 + 20·0.5 + 10·1 + 10·2/3 + 5·1 over the 95 points that have a value.
    expected = (30 * 2 / 3 + 20 * 0.5 + 20 * 0.5 + 10 + 10 * 2 / 3 + 5) / 95 * 100
    assert street["score"] == pytest.approx(expected, abs=0.01)
    assert report["total"]["counts"]["cases"] == 3

    units = {r["key"]: r for r in kpis(client, as_user, today, by="unit")["rows"]}
    um, tr = units["urban-management"], units["transport"]
    assert (um["counts"]["dispatched"], um["counts"]["overdue"], um["basis"]) == (2, 1, 2)
    assert um["rates"]["on_time_handling"] == 0.5
    assert (tr["counts"]["dispatched"], tr["rates"]["on_time_handling"]) == (1, 1.0)
    assert tr["counts"]["registered"] == 0  # it led no case
    assert not um["ranked"]  # two tasks: too few to rank (ROADCHIEF_ASSESSMENT_MIN_CASES 5)


def test_a_past_period_does_not_move_when_later_events_arrive(
    client: TestClient, as_user: Headers, month: dict[str, Loop], session: Session, spot: Spot,
    good_jpeg: Jpeg,
) -> None:  # fmt: skip
    """Move the three cases and their history back a month: that month is over. Then B is
    handled now: the old month's figures stay as they were."""
    shift = timedelta(days=35)
    ids = select(Case.id).where(Case.number.in_([loop.number for loop in month.values()]))
    for case in session.scalars(select(Case).where(Case.id.in_(ids))):
        case.reported_at -= shift
    for event in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids))):
        event.occurred_at -= shift
    for task in session.scalars(select(CaseTask).where(CaseTask.case_id.in_(ids))):
        task.assigned_at -= shift
    for report in session.scalars(select(Report).where(Report.case_id.in_(ids))):
        report.received_at -= shift
    session.flush()
    rebuild(session)  # history rewritten behind the service's back, as an import would
    then = (utcnow() - shift).astimezone(SHANGHAI).date()
    before = kpis(client, as_user, then, by="street", street=spot.street_code)
    assert before["complete"] is True
    assert before["rows"][0]["counts"]["closed"] == 1

    b = month["b"]
    b.version = b.read("demo-dispatcher")["version"]
    b.ok("demo-staff", "sign_for")
    fix = upload(b.client, good_jpeg(), headers=b.as_user("demo-staff"))["id"]
    b.ok("demo-staff", "feed_back", note="已清理", photo_ids=[fix])
    b.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat)
    after = kpis(client, as_user, then, by="street", street=spot.street_code)
    assert after["rows"] == before["rows"]
    assert after["total"] == before["total"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"by": "street", "from": "2026-11-09", "to": "2026-11-01"}, "bad_period"),
        ({"by": "street", "from": "2025-01-01", "to": "2026-11-01"}, "bad_period"),
        ({"by": "street", "from": "2026-11-01", "to": "2026-11-09", "unit": "nope"},
         "unknown_filter_value"),
        ({"by": "street", "from": "2026-11-01", "to": "2026-11-09", "weights": "closure:60"},
         "bad_weights"),
        ({"by": "street", "from": "2026-11-01", "to": "2026-11-09",
          "weights": "closure:60,charm:40"}, "bad_weights"),
        ({"by": "planet", "from": "2026-11-01", "to": "2026-11-09"}, "validation_failed"),
    ],
)  # fmt: skip
def test_bad_queries_get_a_specific_problem(
    client: TestClient, as_user: Headers, params: dict[str, str], code: str
) -> None:
    answer = client.get("/api/v1/assessment/kpis", params=params, headers=as_user("demo-assessor"))
    assert (answer.status_code, answer.json()["code"]) == (422, code)
    assert answer.json()["detail"]


def test_weights_given_on_the_query_change_the_score_only(
    client: TestClient, as_user: Headers, month: dict[str, Loop], spot: Spot
) -> None:
    today = utcnow().astimezone(SHANGHAI).date()
    closure_only = "closure:100"
    [row] = kpis(client, as_user, today, by="street", street=spot.street_code,
                 weights=closure_only)["rows"]  # fmt: skip
    assert row["score"] == 50.0
    assert kpis(client, as_user, today, by="street", weights=closure_only)["weights"] == {
        "closure": 100.0
    }


def test_the_definitions_are_published_and_documented(
    client: TestClient, as_user: Headers, settings: Settings
) -> None:
    answer = client.get("/api/v1/assessment/kpi-definitions", headers=as_user("demo-assessor"))
    table = {k["code"]: k for k in answer.json()["kpis"]}
    assert table["on_time_closure"]["name"] == "按期结案率"
    assert table["rework"]["better"] == "lower"
    assert sum(k["weight"] or 0 for k in table.values()) == 100
    assert DOC_PATH.read_text(encoding="utf-8") == kpi_markdown(
        parse_weights(settings.assessment_weights)
    ), "docs/kpis.md is out of date: run `.venv/bin/roadchief assessment doc`"
