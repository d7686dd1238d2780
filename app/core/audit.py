"""The security audit trail (安全审计): its table and the one way to write it.

Every domain that changes someone's access or the city's rules records here (accounts,
routing, the calendar, webhooks, assessment), so the trail sits below them all, as the
idempotency table does; reading it (with the names of users and keys) is the `audit`
package's, above accounts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.database import Base, UTCDateTime, str_enum, utcnow


class AuditEventType(StrEnum):
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    REFRESH_TOKEN_RETRIED = "refresh_token_retried"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_CHANGE_FAILED = "password_change_failed"
    PASSWORD_RESET = "password_reset"
    USER_CREATED = "user_created"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    ROLES_CHANGED = "roles_changed"
    SCOPE_CHANGED = "scope_changed"
    SEGMENTS_CHANGED = "segments_changed"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    TAXONOMY_IMPORTED = "taxonomy_imported"
    RULE_SET_UPLOADED = "rule_set_uploaded"
    RULE_SET_ACTIVATED = "rule_set_activated"
    CALENDAR_CHANGED = "calendar_changed"
    WEBHOOK_CREATED = "webhook_created"
    WEBHOOK_DEACTIVATED = "webhook_deactivated"
    ASSESSMENT_PERIOD_CLOSED = "assessment_period_closed"
    ASSESSMENT_CORRECTED = "assessment_corrected"


class AuditEvent(Base):
    """One security event (安全审计事件). Never updated, never deleted by the app."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_event_occurred_at", "event", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    event: Mapped[AuditEventType] = mapped_column(str_enum(AuditEventType))
    #: Who acted: a user, an API key, or neither (the CLI, an anonymous sign-in attempt).
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    #: Whose access the event concerns.
    subject_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    #: The username as typed, for sign-ins (also for names that do not exist).
    username: Mapped[str | None] = mapped_column(String(100))
    client_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Actor(Protocol):
    """Who acted, as the trail keeps it (an `access.rules.Principal`)."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def api_key_id(self) -> int | None: ...


def record(
    session: Session,
    event: AuditEventType,
    *,
    actor: Actor | None = None,
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
