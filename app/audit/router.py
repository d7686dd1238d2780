"""Admins read the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.access.deps import PrincipalDep
from app.audit.models import AuditEventType
from app.audit.schemas import AuditEventOut
from app.audit.service import list_events
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.inputs import Moment
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router

router = api_router(prefix="/api/v1/admin/audit-events", tags=["admin: audit"])


@router.get(
    "",
    summary="Security events, newest first",
    response_model=Page[AuditEventOut],
    responses=problem_responses(),
)
def list_audit_events(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    event: AuditEventType | None = None,
    user: Annotated[
        str | None, Query(max_length=100, description="Actor, subject or typed username")
    ] = None,
    since: Annotated[
        Moment | None,
        Query(description="From (inclusive), with offset", examples=["2026-11-01T00:00:00+08:00"]),
    ] = None,
    until: Annotated[Moment | None, Query(description="Until (exclusive), with offset")] = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> dict[str, object]:
    items, next_cursor = list_events(
        session,
        settings,
        principal,
        event=event,
        user=user,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}
