"""Writing and reading the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.accounts.access import Permission, Principal
from app.accounts.models import ApiKey, User
from app.audit.models import AuditEvent, AuditEventType
from app.audit.schemas import AuditEventOut
from app.core.pagination import decode_id_cursor, encode_cursor

if TYPE_CHECKING:
    from app.settings import Settings


def record(
    session: Session,
    event: AuditEventType,
    *,
    actor: Principal | None = None,
    subject_user_id: int | None = None,
    username: str | None = None,
    client_address: str | None = None,
    occurred_at: datetime | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an event to the session; it commits with the change it records."""
    row = AuditEvent(
        event=event,
        actor_user_id=actor.user_id if actor else None,
        actor_api_key_id=actor.api_key_id if actor else None,
        subject_user_id=subject_user_id,
        username=username,
        client_address=client_address,
        detail=detail,
    )
    if occurred_at is not None:
        row.occurred_at = occurred_at
    session.add(row)
    return row


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
    after = decode_id_cursor(cursor)
    if after is not None:
        query = query.where(AuditEvent.id < after)
    rows = session.execute(query.order_by(AuditEvent.id.desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    zone = settings.zone
    return [
        AuditEventOut(
            id=e.id,
            occurred_at=e.occurred_at.astimezone(zone),
            event=e.event,
            actor_username=actor,
            actor_api_key=key_name,
            subject_username=subject,
            username=e.username,
            client_address=e.client_address,
            detail=e.detail or {},
        )
        for e, actor, subject, key_name in rows[:limit]
    ], next_cursor
