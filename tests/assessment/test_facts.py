"""The KPI facts from the shell: a city that imports its history (events written without
the service's steps) rebuilds them from the events. That they equal a replay of the events
step by step is proven by `test_figures_property.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.assessment import service
from app.cases.facts import rebuild
from app.cases.models import Case, CaseEvent, CaseFact, CaseFactAtMonthEnd, CaseSource, CaseStatus
from app.cli import cli
from app.core.database import Database
from app.routing.models import Urgency
from app.territory.models import Unit, UnitKind
from tests.support import Jpeg
from tests.support.cases import Loop, dispatched, loop  # noqa: F401
from tests.support.places import Spot
from tests.support.reports import multipart, report_body

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def november_kpis(
    client: TestClient, as_user: Callable[[str], dict[str, str]], by: str
) -> dict[str, Any]:
    """November 2026's KPIs by `by`, as an assessor reads them once the month is over."""
    month = {"by": by, "from": "2026-11-01", "to": "2026-11-30"}
    answer = client.get("/api/v1/assessment/kpis", headers=as_user("demo-assessor"), params=month)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    assert report["complete"] is True
    return {"rows": report["rows"], "total": report["total"]}


def test_the_facts_are_rebuilt_from_imported_events(empty_database: Database) -> None:
    with empty_database.sessions() as session:
        city, parks = (Unit(code=code, name=code, kind=UnitKind.FUNCTIONAL_DEPARTMENT)
                       for code in ("city", "parks"))  # fmt: skip
        case = Case(
            number="IMPORTED1", status=CaseStatus.CLOSED, source=CaseSource.PLATFORM,
            category_code="roads.surface", urgency=Urgency.NORMAL, description="导入",
            reported_at=T0, geom="SRID=4326;POINT(113.6 34.8)",
            jurisdiction_path="/410199/410199001/", street_code="410199001",
        )  # fmt: skip
        session.add_all([city, parks, case])
        session.flush()

        def at(hours: float) -> datetime:
            return T0 + timedelta(hours=hours)

        history: list[tuple[str, str | None, dict[str, Any]]] = [
            ("reported", "pending_registration", {}),
            ("registered", "registered", {}),
            ("dispatched", "dispatched", {"units": ["city", "parks"]}),
            ("signed_for", "in_progress", {"unit_id": city.id}),
            ("return_decided", None, {"unit_id": parks.id, "upheld": True}),
            ("fed_back", "awaiting_verification", {"unit_id": city.id, "working_hours": 3.5}),
            ("verified", "closed", {}),
        ]
        session.add_all(
            CaseEvent(case_id=case.id, kind=kind, to_status=to, detail=detail,
                      occurred_at=at(i), photo_ids=[])
            for i, (kind, to, detail) in enumerate(history)
        )  # fmt: skip
        # A stale fact, as if left from before the import: the rebuild replaces it.
        session.add(CaseFact(case_id=case.id, unit_id=0, reported_at=T0, jurisdiction_path="/",
                             category_code="x", status="registered"))  # fmt: skip
        session.commit()
        ids = {"case": case.id, "city": city.id, "parks": parks.id}

    result = CliRunner().invoke(cli, ["assessment", "rebuild-facts"])
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output

    with empty_database.sessions() as session:
        rows = {f.unit_id: f for f in session.scalars(select(CaseFact))}
    assert set(rows) == {0, ids["city"], ids["parks"]}
    own = rows[0]
    assert (own.status, own.registered, own.fed_back, own.cancelled, own.lead_unit_id) == (
        "closed", 1, 1, 0, ids["city"],
    )  # fmt: skip
    assert (own.street_code, own.category_code, own.reported_at) == (
        "410199001", "roads.surface", T0,
    )  # fmt: skip
    city_task, parks_task = rows[ids["city"]], rows[ids["parks"]]
    assert (city_task.state, city_task.signed_at, city_task.fed_at, city_task.fed_hours) == (
        "working", T0 + timedelta(hours=3), T0 + timedelta(hours=5), 3.5,
    )  # fmt: skip
    assert (parks_task.state, parks_task.upheld, parks_task.dispatched) == ("returned", 1, 1)


def test_each_step_writes_its_facts_in_one_statement_or_none(
    dispatched: Loop,  # noqa: F811 - the fixture imported above
    session: Session,
) -> None:
    """The facts cost a step one statement (an upsert of the case's row and its tasks'
    rows; an update of them all when it is cancelled); a step that changes no figure, none."""
    written: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "case_facts" in statement and not statement.lstrip().upper().startswith("SELECT"):
            written.append(statement.lstrip().split(None, 1)[0].upper())

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", seen)
    try:
        for who, action, body, statements in (
            ("demo-staff", "sign_for", {}, ["INSERT"]),
            ("demo-dispatcher", "urge", {"note": "请尽快处置"}, []),
            ("demo-dispatcher", "hang_up", {"note": "等待资金"}, ["INSERT"]),
            ("demo-dispatcher", "resume", {}, ["INSERT"]),
            ("demo-admin", "cancel", {"note": "重复案件"}, ["UPDATE"]),
        ):
            written.clear()
            dispatched.ok(who, action, **body)
            assert written == statements, action
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    case_id = session.scalar(select(Case.id).where(Case.number == dispatched.number))
    rows = session.execute(select(CaseFact.__table__).where(CaseFact.case_id == case_id)).all()
    assert len(rows) == 3  # the case's row and its two units' tasks
    assert {(r.cancelled, r.unit_id == 0 and r.status) for r in rows} == {
        (1, "cancelled"), (1, False),
    }  # fmt: skip


@pytest.mark.time_machine("2026-11-30T20:00:00+08:00", tick=False)  # a month's last evening
def test_a_month_that_is_over_reads_the_facts_kept_as_of_its_end(
    dispatched: Loop,  # noqa: F811 - the fixture imported above
    session: Session,
    client: TestClient,
    as_user: Callable[[str], dict[str, str]],
    time_machine: Any,
) -> None:
    """The first step on a case after its month ended keeps the case's facts as they stood
    at the end; the month, over but not yet closed, reads them (the later steps do not move
    its figures) instead of replaying the case's events."""
    case_id = session.scalar(select(Case.id).where(Case.number == dispatched.number))

    def kept(table: Any) -> dict[int, tuple[Any, ...]]:
        session.rollback()
        rows = session.execute(select(table.__table__).where(table.case_id == case_id))
        return {r.unit_id: tuple(r) for r in rows}

    def november(by: str) -> dict[str, Any]:
        return november_kpis(client, as_user, by)

    at_end = kept(CaseFact)
    time_machine.move_to(datetime(2026, 12, 1, 0, 5, tzinfo=SHANGHAI), tick=False)
    figures = {by: november(by) for by in ("street", "unit")}
    assert kept(CaseFactAtMonthEnd) == {}  # nothing changed yet: nothing kept

    dispatched.ok("demo-staff", "sign_for")
    assert kept(CaseFactAtMonthEnd) == at_end  # as the month ended
    assert kept(CaseFact) != at_end
    time_machine.shift(timedelta(hours=2))
    dispatched.ok("demo-dispatcher", "hang_up", note="等待资金")
    assert kept(CaseFactAtMonthEnd) == at_end  # kept once, not moved by later steps

    for by, then in figures.items():
        assert november(by) == then, by
    service.FROM_FACTS = False  # the same month replayed from the events, as before
    try:
        for by, then in figures.items():
            assert november(by) == then, by
    finally:
        service.FROM_FACTS = True
    # It is the kept copy the month reads: marked rejected there, the month counts it so.
    session.execute(
        update(CaseFactAtMonthEnd)
        .where(CaseFactAtMonthEnd.case_id == case_id, CaseFactAtMonthEnd.unit_id == 0)
        .values(rejected=1)
    )
    session.commit()
    rejected = figures["street"]["total"]["counts"]["rejected"]
    assert november("street")["total"]["counts"]["rejected"] == rejected + 1
    # Without its copy (a database upgraded from before them) the case is replayed.
    session.execute(delete(CaseFactAtMonthEnd).where(CaseFactAtMonthEnd.case_id == case_id))
    session.commit()
    for by, then in figures.items():
        assert november(by) == then, by
    assert rebuild(session) > 0  # the events give the same copy again
    session.commit()
    assert kept(CaseFactAtMonthEnd) == at_end


@pytest.mark.time_machine("2026-10-30T10:00:00+08:00", tick=False)  # October's case
def test_a_duplicate_joining_an_older_case_counts_once_in_a_month_that_is_over(
    dispatched: Loop,  # noqa: F811 - the fixture imported above
    phone: Callable[[str], TestClient],
    spot: Spot,
    good_jpeg: Jpeg,
    client: TestClient,
    as_user: Callable[[str], dict[str, str]],
    time_machine: Any,
) -> None:
    """A case of October is joined by a duplicate report in November and changed after
    November ended: November's report counts it once, under the case's lead as of the end,
    as the replay of the events does."""
    dispatched.ok("demo-staff", "sign_for")  # a step in October: the case has facts then
    time_machine.move_to(datetime(2026, 11, 12, 9, 0, tzinfo=SHANGHAI), tick=False)
    joined = multipart(phone("demo-chief-3"), report_body(spot), [good_jpeg()])
    assert joined.status_code == 201, joined.text
    assert joined.json()["case_number"] == dispatched.number  # a duplicate, joined

    def november(by: str) -> dict[str, Any]:
        return november_kpis(client, as_user, by)

    time_machine.move_to(datetime(2026, 12, 1, 0, 5, tzinfo=SHANGHAI), tick=False)
    at_end = {by: november(by) for by in ("street", "unit")}
    assert at_end["street"]["total"]["counts"]["reports"] == 1
    dispatched.ok("demo-dispatcher", "hang_up", note="等待资金")  # changed since
    for by, then in at_end.items():
        assert november(by) == then, by
    service.FROM_FACTS = False  # the same month replayed from the events
    try:
        for by, then in at_end.items():
            assert november(by) == then, by
    finally:
        service.FROM_FACTS = True
