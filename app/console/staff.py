"""Department staff's pages (职能部门): their unit's tasks, batch sign-for."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import Response

from app.cases import queues
from app.cases.models import TaskStatus
from app.cases.schemas import ActionIn
from app.cases.steps import perform
from app.cases.workflow import Action
from app.console.deps import CsrfField, Me, console_router
from app.console.pages import render
from app.console.session import check_csrf
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem
from app.routing.service import routing_context

router = console_router()


@router.get("/tasks")
def tasks_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    status: Annotated[TaskStatus | None, Query()] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    street: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    flag = {"true": True, "false": False}.get(overdue or "")
    items, next_cursor = queues.unit_tasks(
        session, settings, me, unit_code=unit or None, status=status, category=category or None,
        street=street or None, overdue=flag, limit=50, cursor=cursor or None,
    )  # fmt: skip
    filters = {
        "status": status.value if status else "",
        "category": category or "",
        "street": street or "",
        "overdue": overdue or "",
        "unit": unit or "",
    }
    more = urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
    template = "tasks_rows.html" if request.headers.get("HX-Request") else "tasks.html"
    return render(
        request, settings, template, me, items=items, filters=filters, more=more,
        statuses=list(TaskStatus), categories=routing_context(session).taxonomy,
    )  # fmt: skip


@router.post("/tasks/sign-for")
def batch_sign_for(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    picked: Annotated[list[str], Form(alias="task", max_length=50)],
    csrf: CsrfField = None,
) -> Response:
    """签收 several tasks: each `number:version:unit` as the list showed it. Each is its own
    step (its own version check); one refused does not undo the others."""
    check_csrf(request, settings, csrf)
    results = []
    for value in picked:
        number, _, rest = value.partition(":")
        version, _, unit = rest.partition(":")
        try:
            perform(
                session, settings, me, number, Action.SIGN_FOR,
                ActionIn(version=int(version) if version.isdigit() else -1, unit_code=unit or None),
                None,
            )  # fmt: skip
            results.append((number, True, "已签收"))
        except Problem as problem:
            results.append((number, False, problem.detail or problem.title))
    return render(request, settings, "batch_result.html", me, results=results)
