"""Reading the audit log (written by `app.core.audit.record`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.access.rules import Permission, Principal
from app.accounts.models import ApiKey, User
from app.audit.schemas import AuditEventOut
from app.core.audit import AuditEvent, AuditEventType
from app.core.audit import record as record  # where most domains import it from
from app.core.pagination import Keyset

#: Audit events newest first.
NEWEST_FIRST = Keyset(AuditEvent.id, descending=True)

if TYPE_CHECKING:
    from app.settings import Settings


_Actor = aliased(User)
_Subject = aliased(User)


def list_events(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    event: AuditEventType | None,
    user: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEventOut], str | None]:
    """Newest first. `user` matches the actor, the subject or the typed username."""
    principal.require(Permission.AUDIT_READ)
    query = (
        select(AuditEvent, _Actor.username, _Subject.username, ApiKey.name)
        .outerjoin(_Actor, AuditEvent.actor_user_id == _Actor.id)
        .outerjoin(_Subject, AuditEvent.subject_user_id == _Subject.id)
        .outerjoin(ApiKey, AuditEvent.actor_api_key_id == ApiKey.id)
    )
    if event is not None:
        query = query.where(AuditEvent.event == event)
    if user is not None:
        query = query.where(
            (_Actor.username == user) | (_Subject.username == user) | (AuditEvent.username == user)
        )
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    rows, next_cursor = NEWEST_FIRST.rows(session, query, limit=limit, cursor=cursor)
    return [
        AuditEventOut(
            id=e.id,
            occurred_at=e.occurred_at,
            event=e.event,
            actor_username=actor,
            actor_api_key=key_name,
            subject_username=subject,
            username=e.username,
            client_address=e.client_address,
            detail=e.detail or {},
        )
        for e, actor, subject, key_name in rows
    ], next_cursor
