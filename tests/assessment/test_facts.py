"""The KPI facts from the shell: a city that imports its history (events written without
the service's steps) rebuilds them from the events. That they equal a replay of the events
step by step is proven by `test_figures_property.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cases.models import Case, CaseEvent, CaseFact, CaseSource, CaseStatus
from app.cli import cli
from app.core.database import Database
from app.routing.models import Urgency
from app.territory.models import Unit, UnitKind
from tests.support.cases import Loop, dispatched, loop  # noqa: F401

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


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
