"""The command centre at the console: whistles and their report-ins, the day's deadline
warnings and escalations, urging (督办) from the row."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.cases.sweep import sweep
from app.settings import Settings
from tests.support import Headers
from tests.support.cases import SECOND, Loop, lead_task
from tests.support.console import Browser
from tests.support.places import Spot
from tests.support.whistles import blow, report_in


def next_street_dispatcher(session: Session, settings: Settings) -> str:
    create_user(
        session, settings, None,
        UserCreate(
            username="dispatcher-410199002", display_name="邻街指挥员",
            password="Centre@2026-long", roles=[Role.DISPATCHER],
            jurisdiction_codes=["410199002"],
        ),
    )  # fmt: skip
    return "dispatcher-410199002"


def test_the_centre_sees_whistles_and_who_reported_in(
    browser: Callable[[], Browser],
    client: TestClient,
    as_user: Headers,
    spot: Spot,
    staff: Callable[[str], str],
    session: Session,
    settings: Settings,
) -> None:
    whistle = blow(client, as_user, spot, report_in_minutes=20)
    came = report_in(client, as_user(staff("urban-management")), whistle["id"], spot.lon, spot.lat)
    assert came.status_code == 200, came.text

    centre = browser()
    centre.sign_in("demo-dispatcher")
    page = centre.get("/console/whistles")
    assert page.status_code == 200
    row = page.text.split(f'id="whistle-{whistle["id"]}"')[1].split("</tr>")[0]
    assert "按时报到" in row
    assert "待报到" in row
    assert whistle["segment_code"] in row
    assert f'id="whistle-{whistle["id"]}"' in centre.get("/console/whistles?open=true").text

    other = browser()
    other.sign_in(next_street_dispatcher(session, settings), "Centre@2026-long")
    assert f'id="whistle-{whistle["id"]}"' not in other.get("/console/whistles").text
    assert browser().get("/console/whistles").status_code == 303  # to sign in


def test_the_days_warnings_and_escalations_and_urging_from_the_row(
    browser: Callable[[], Browser], dispatched: Loop, session: Session, settings: Settings
) -> None:
    loop = dispatched
    loop.ok("demo-staff", "sign_for")
    task = lead_task(session, loop)
    assert task.handle_warn_at is not None
    assert task.handle_due_at is not None
    centre = browser()
    centre.sign_in("demo-dispatcher")
    warn_day = task.handle_warn_at.astimezone(settings.zone).date()
    assert f'id="alarm-{loop.number}"' not in centre.get(f"/console/alarms?day={warn_day}").text

    sweep(session, settings, now=task.handle_warn_at + SECOND)
    page = centre.get(f"/console/alarms?day={warn_day}")
    row = page.text.split(f'id="alarm-{loop.number}"')[1].split("</tr>")[0]
    assert "时限预警" in row
    assert "区城管局" in row
    assert "countdown-amber" in row

    due = task.handle_due_at
    sweep(session, settings, now=due + SECOND)
    due_day = due.astimezone(settings.zone).date()
    page = centre.get(f"/console/alarms?day={due_day}")
    row = page.text.split(f'id="alarm-{loop.number}"')[1].split("</tr>")[0]
    assert "处置超期" in row
    assert "已升级 1 级" in row

    version = loop.read("demo-dispatcher")["version"]
    urged = centre.post(
        f"/console/cases/{loop.number}/actions/urge",
        {"version": version, "note": "请今日内处置完毕", "back": f"/console/alarms?day={due_day}"},
    )
    assert urged.headers["location"] == f"/console/alarms?day={due_day}&flash=done"
    case = loop.read("demo-dispatcher")
    assert case["urge_count"] == 1
    assert case["history"][-1]["kind"] == "urged"
    assert "已 1 次" in centre.get(f"/console/alarms?day={due_day}").text

    other = browser()
    other.sign_in(next_street_dispatcher(session, settings), "Centre@2026-long")
    assert f'id="alarm-{loop.number}"' not in other.get(f"/console/alarms?day={due_day}").text
    tried = other.post(
        f"/console/cases/{loop.number}/actions/urge",
        {"version": case["version"], "note": "越权督办"},
    )
    assert tried.status_code == 404
    staff = browser()
    staff.sign_in("demo-staff")
    refused = staff.post(
        f"/console/cases/{loop.number}/actions/urge", {"version": case["version"], "note": "x"}
    )
    assert refused.status_code == 403
    assert loop.read("demo-dispatcher")["urge_count"] == 1
    assert browser().get("/console/alarms").status_code == 303
