"""What Open311 adds to a report: the request's token and client fields, posted updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime, utcnow


class Open311Request(Base):
    """A `POST requests` that became a report (and so opened or joined a case): its token,
    the key that sent it and the client's own fields (email, device, account, address)."""

    __tablename__ = "open311_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="RESTRICT"), index=True
    )
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="RESTRICT"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    client_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Open311Update(Base):
    """An update an external system posted (`POST servicerequestupdates`), kept so a
    resent one (the same key and `update_id`) is answered, not recorded twice."""

    __tablename__ = "open311_updates"
    __table_args__ = (UniqueConstraint("api_key_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    case_event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
