"""The closed loop's shared actor: one case, acted on by different people (`Loop`), the
`loop` and `dispatched` fixtures (import them into a package's conftest.py), and small
readers of a case's tasks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseTask
from app.territory.models import Unit
from tests.support import Headers, Jpeg
from tests.support.places import Spot
from tests.support.reports import multipart, report_body


class Loop:
    """Acts on one case as different people, sending the version last seen."""

    def __init__(self, client: TestClient, as_user: Headers, number: str) -> None:
        self.client, self.as_user, self.number = client, as_user, number
        self.version = self.read("demo-dispatcher")["version"]

    def read(self, who: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/cases/{self.number}", headers=self.as_user(who))
        assert response.status_code == 200, response.text
        assert response.headers["ETag"] == f'"{response.json()["version"]}"'
        result: dict[str, Any] = response.json()
        return result

    def act(self, who: str, action: str, **body: Any) -> Any:
        return self.client.post(
            f"/api/v1/cases/{self.number}/actions/{action}",
            json=body,
            headers={**self.as_user(who), "If-Match": f'"{self.version}"'},
        )

    def ok(self, who: str, action: str, **body: Any) -> dict[str, Any]:
        response = self.act(who, action, **body)
        assert response.status_code == 200, response.text
        case: dict[str, Any] = response.json()
        assert case["version"] == self.version + 1
        self.version = case["version"]
        return case


@pytest.fixture
def loop(phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg) -> Loop:
    client = phone("demo-chief-3")
    receipt = multipart(client, report_body(spot), [good_jpeg()]).json()
    return Loop(client, as_user, receipt["case_number"])


@pytest.fixture
def dispatched(loop: Loop, staff: Callable[[str], str]) -> Loop:
    """The case registered and dispatched: urban-management leads, transport cooperates
    (its staff: `dispatched.transport`)."""
    loop.transport = staff("transport")  # type: ignore[attr-defined]
    loop.ok("demo-dispatcher", "register")
    loop.ok(
        "demo-dispatcher", "dispatch", units=["urban-management", "transport"], reason="交通协办"
    )
    return loop


def task_of(case: dict[str, Any], unit_code: str) -> dict[str, Any]:
    task: dict[str, Any] = next(t for t in case["tasks"] if t["unit"]["code"] == unit_code)
    return task


def comparable(case: dict[str, Any]) -> dict[str, Any]:
    """The case without what moves with the clock: "a refusal changed nothing" compares it."""
    return {**case, "tasks": [{**t, "remaining_working_hours": None} for t in case["tasks"]]}


SECOND = timedelta(seconds=1)


def lead_task(session: Session, loop: Loop) -> CaseTask:
    task = session.scalar(
        select(CaseTask)
        .join(Case, CaseTask.case_id == Case.id)
        .join(Unit, CaseTask.unit_id == Unit.id)
        .where(Case.number == loop.number, Unit.code == "urban-management")
    )
    assert task is not None
    return task
