"""Last month is over: the admin freezes it. Its figures stay as frozen whatever happens
later; the only change is an admin's correction, which says who, when and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessment.periods import close_due_periods
from app.assessment.rankings import period_bounds
from app.audit.models import AuditEvent, AuditEventType
from app.core.database import utcnow
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.assessment import move_to_last_month
from tests.support.cases import Loop
from tests.support.places import Spot
from tests.support.reports import upload


def street_kpis(client: TestClient, headers: dict[str, str], label: str, street: str) -> Any:
    first, last, _ = period_bounds(label)
    params = {"by": "street", "from": first.isoformat(), "to": last.isoformat(), "street": street}
    answer = client.get("/api/v1/assessment/kpis", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_closed_month_keeps_its_figures_and_only_corrections_change_them(
    client: TestClient, as_user: Headers, session: Session, settings: Settings, spot: Spot,
    month: dict[str, Loop], good_jpeg: Jpeg,
) -> None:  # fmt: skip
    label = move_to_last_month(session, settings, month.values())
    admin, assessor = as_user("demo-admin"), as_user("demo-assessor")
    live = street_kpis(client, assessor, label, spot.street_code)
    assert live["frozen"] is False

    closed = client.post(f"/api/v1/admin/assessment/periods/{label}/close", headers=admin)
    assert closed.status_code == 200, closed.text
    assert len(closed.json()["snapshots"]) == 10
    assert closed.json()["closed_by"] == "demo-admin"
    frozen = street_kpis(client, assessor, label, spot.street_code)
    assert frozen["frozen"] is True
    assert frozen["rows"] == live["rows"]

    # Case B is handled now, and an inspection comes in: the frozen month does not move.
    b = month["b"]
    b.version = b.read("demo-dispatcher")["version"]
    b.ok("demo-staff", "sign_for")
    fix = upload(b.client, good_jpeg(), headers=b.as_user("demo-staff"))["id"]
    b.ok("demo-staff", "feed_back", note="已清理", photo_ids=[fix])
    assert street_kpis(client, assessor, label, spot.street_code)["rows"] == live["rows"]

    board = client.get("/api/v1/assessment/rankings", headers=assessor,
                       params={"kind": "street", "period": label}).json()  # fmt: skip
    assert board["frozen"] is True
    correction = {"kind": "ranking:street", "key": spot.street_code, "field": "score",
                  "value": 77.5, "reason": "复核：扣分依据不足，更正"}  # fmt: skip
    corrected = client.post(f"/api/v1/admin/assessment/periods/{label}/corrections",
                            json=correction, headers=admin)  # fmt: skip
    assert corrected.status_code == 200, corrected.text
    [made] = corrected.json()["corrections"]
    assert (made["field"], made["new_value"], made["corrected_by"]) == ("score", 77.5, "demo-admin")
    again = client.get("/api/v1/assessment/rankings", headers=assessor,
                       params={"kind": "street", "period": label}).json()  # fmt: skip
    [row] = [r for r in again["rows"] if r["key"] == spot.street_code]
    assert (row["score"], row["rank"]) == (77.5, 1)
    audited = select(AuditEvent.detail).where(
        AuditEvent.event == AuditEventType.ASSESSMENT_CORRECTED
    )
    assert session.scalar(audited)["reason"] == correction["reason"]
    # A part of the score corrected: the score follows it (the inspections are missing).
    part = {**correction, "field": "case_score", "value": 60, "reason": "案件分复核"}
    assert client.post(f"/api/v1/admin/assessment/periods/{label}/corrections", json=part,
                       headers=admin).status_code == 200  # fmt: skip
    rescored = client.get("/api/v1/assessment/rankings", headers=assessor,
                          params={"kind": "street", "period": label}).json()  # fmt: skip
    [row] = [r for r in rescored["rows"] if r["key"] == spot.street_code]
    assert (row["case_score"], row["score"]) == (60.0, 60.0)
    shown = client.get(f"/api/v1/assessment/periods/{label}", headers=assessor).json()
    assert len(shown["corrections"]) == 2
    assert shown["corrections"][0] == corrected.json()["corrections"][0]

    # A street chief sees only their street: they get live figures, not the district's copy.
    own = street_kpis(client, as_user("demo-chief-2"), label, spot.street_code)
    assert own["frozen"] is False


def test_what_cannot_be_closed_or_corrected(
    client: TestClient, as_user: Headers, session: Session, settings: Settings,
    month: dict[str, Loop], spot: Spot,
) -> None:  # fmt: skip
    label = move_to_last_month(session, settings, month.values())
    admin = as_user("demo-admin")
    url = f"/api/v1/admin/assessment/periods/{label}"
    now = f"{utcnow().astimezone(settings.zone):%Y-%m}"
    refused = [
        (client.post(f"/api/v1/admin/assessment/periods/{now}/close", headers=admin),
         409, "period_not_over"),
        (client.post(f"{url}/close", headers=as_user("demo-assessor")), 403, "forbidden"),
        (client.post("/api/v1/admin/assessment/periods/2026-13/close", headers=admin),
         422, "bad_period"),
        (client.post(f"{url}/corrections", headers=admin, json={
            "kind": "ranking:street", "key": spot.street_code, "field": "score", "value": 1,
            "reason": "未固化"}), 404, "not_found"),
    ]  # fmt: skip
    for answer, status, code in refused:
        assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert client.post(f"{url}/close", headers=admin).status_code == 200
    twice = client.post(f"{url}/close", headers=admin)
    assert (twice.status_code, twice.json()["code"]) == (409, "period_closed")
    for body, code in (
        ({"field": "counts.closed", "value": 2.5}, "bad_correction"),
        ({"field": "rates.closure", "value": 1.5}, "bad_correction"),
        ({"field": "score", "value": -1}, "bad_correction"),
        ({"field": "rank", "value": 1}, "unknown_figure"),
    ):
        answer = client.post(f"{url}/corrections", headers=admin, json={
            "kind": "kpis:street", "key": spot.street_code, "reason": "试试", **body})  # fmt: skip
        assert (answer.status_code, answer.json()["code"]) == (422, code), body
    for body in (
        {"kind": "ranking:planet", "key": spot.street_code, "field": "score"},
        {"kind": "ranking:street", "key": "nowhere", "field": "score"},
        {"kind": "kpis:street", "key": spot.street_code, "field": "counts.charm"},
        {"kind": "kpis:street", "key": spot.street_code, "field": "name"},
    ):
        answer = client.post(f"{url}/corrections", headers=admin,
                             json={**body, "value": 1, "reason": "试试"})  # fmt: skip
        assert (answer.status_code, answer.json()["code"]) == (422, "unknown_figure"), body
    fine = client.post(f"{url}/corrections", headers=admin, json={
        "kind": "kpis:street", "key": spot.street_code, "field": "counts.closed", "value": 2,
        "reason": "漏计一件"})  # fmt: skip
    assert fine.status_code == 200
    first, last, _ = period_bounds(label)
    params = {"by": "street", "from": first.isoformat(), "to": last.isoformat()}
    answer = client.get("/api/v1/assessment/kpis", headers=as_user("demo-assessor"), params=params)
    [row] = answer.json()["rows"]
    assert row["counts"]["closed"] == 2


def test_the_service_closes_last_month_and_week_a_few_days_after_they_end(
    session: Session, settings: Settings, month: dict[str, Loop]
) -> None:
    label = move_to_last_month(session, settings, month.values())
    _, last, _ = period_bounds(label)
    soon = last + timedelta(days=settings.assessment_auto_close_days or 0)
    early = close_due_periods(session, settings, today=soon)  # older periods, not this one
    assert label not in early
    closed = close_due_periods(session, settings, today=soon + timedelta(days=1))
    assert label in closed
    assert close_due_periods(session, settings, today=soon + timedelta(days=1)) == []
    # Months before the first case are not frozen empty.
    assert [x for x in early + closed if "-W" not in x] == [label]
    off = settings.model_copy(update={"assessment_auto_close_days": None})
    assert close_due_periods(session, off, today=soon + timedelta(days=30)) == []
