"""Deadlines watched: the unit is warned at 80 %, an overdue task is marked and climbs the
road-chief levels to the centre, and running the sweep again records nothing more."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.calendar.service import working_calendar
from app.cases.models import Case
from app.cases.sweep import sweep
from app.cli import cli
from app.settings import Settings
from tests.support.cases import SECOND, Loop, lead_task, task_of
from tests.support.places import Spot
from tests.support.reports import multipart, report_body


def inbox_titles(loop: Loop, who: str) -> list[str]:
    page = loop.client.get("/api/v1/inbox", headers=loop.as_user(who)).json()
    return [m["title"] for m in page["items"] if m["case_number"] == loop.number]


def kinds(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["history"]]


def test_the_sweep_warns_then_marks_overdue_then_escalates(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    loop.ok("demo-staff", "sign_for")
    loop.ok(loop.transport, "sign_for")  # type: ignore[attr-defined]
    task = lead_task(session, loop)
    warn_at, due = task.handle_warn_at, task.handle_due_at
    assert warn_at is not None
    assert due is not None
    assert task.assigned_at < warn_at < due
    calendar = working_calendar(session, settings)
    used = calendar.working_hours_between(task.assigned_at, warn_at)
    share = used / calendar.working_hours_between(task.assigned_at, due)
    assert share == pytest.approx(settings.deadline_warning_fraction, abs=0.01)

    assert sweep(session, settings, now=warn_at - SECOND).total == 0
    warned = sweep(session, settings, now=warn_at + SECOND)
    assert warned.recorded == {"deadline_warning": 2}  # both units share the terms
    assert sweep(session, settings, now=warn_at + SECOND).total == 0  # idempotent
    assert any("将到" in t for t in inbox_titles(loop, "demo-staff"))
    version = loop.read("demo-dispatcher")["version"]

    overdue = sweep(session, settings, now=due + SECOND)
    assert overdue.recorded == {"overdue": 2}
    assert sweep(session, settings, now=due + SECOND).total == 0
    case = loop.read("demo-dispatcher")
    assert case["version"] == version  # no step was taken: nobody's next step goes stale
    assert kinds(case)[-2:] == ["overdue", "overdue"]
    assert task_of(case, "urban-management")["escalation_level"] == 1
    for who in ("demo-chief-2", "demo-dispatcher", "demo-staff"):  # level 2 is the next up
        assert any("超期" in t for t in inbox_titles(loop, who)), who
    assert not any("超期" in t for t in inbox_titles(loop, "demo-chief-1"))  # not yet

    step_up = calendar.add_working_hours(due, settings.escalation_step_hours)
    assert sweep(session, settings, now=step_up - SECOND).total == 0
    escalated = sweep(session, settings, now=step_up + SECOND)
    assert escalated.recorded == {"escalated": 2}
    assert sweep(session, settings, now=step_up + timedelta(days=30)).total == 0  # the top
    case = loop.read("demo-dispatcher")
    assert task_of(case, "urban-management")["escalation_level"] == 2
    event = case["history"][-1]
    assert (event["kind"], event["actor"], event["actor_role"]) == ("escalated", None, "system")

    # At the top of the ladder there is nothing left to watch.
    session.refresh(task)
    assert task.next_alarm_at is None


def test_a_late_sweep_records_sign_for_overdue_and_skips_the_moot_warning(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    task = lead_task(session, loop)
    assert task.handle_due_at is not None
    run = sweep(session, settings, now=task.handle_due_at + SECOND)
    # Nobody signed: both sign-fors are overdue, and the handling too; no warning after
    # the fact.
    assert run.recorded == {"sign_for_overdue": 2, "overdue": 2}


def test_a_hung_up_case_is_not_swept(
    dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    task = lead_task(session, loop)
    due = task.handle_due_at
    assert due is not None
    loop.ok("demo-dispatcher", "hang_up", note="等待改造资金")
    assert sweep(session, settings, now=due + timedelta(days=60)).total == 0


def test_a_verification_past_its_deadline_is_marked_once(
    phone: Any, session: Session, settings: Settings, spot: Spot, good_jpeg: Any
) -> None:
    chief = phone("demo-chief-3")
    receipt = multipart(
        chief, report_body(spot, fixed_on_spot=True), [good_jpeg()], after=[good_jpeg()]
    ).json()
    case = session.scalar(select(Case).where(Case.number == receipt["case_number"]))
    assert case is not None
    assert case.verify_due_at is not None
    run = sweep(session, settings, now=case.verify_due_at + SECOND)
    assert run.recorded == {"verification_overdue": 1}
    assert sweep(session, settings, now=case.verify_due_at + SECOND).total == 0
    inbox = chief.get("/api/v1/inbox", params={"unread": True}).json()
    assert any("核查超期" in m["title"] for m in inbox["items"])


def test_the_sweep_runs_from_the_command_line(empty_database: Any) -> None:
    result = CliRunner().invoke(cli, ["workflow", "sweep"])
    assert result.exit_code == 0, result.output
    assert '"recorded": {}' in result.output
