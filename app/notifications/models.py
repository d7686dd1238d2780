"""The inbox (站内消息), webhooks and the outbox that feeds them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, TimestampMixin, UTCDateTime, str_enum, utcnow


class Notification(Base):
    """One message in a user's inbox: something they must act on, or should know."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    case_number: Mapped[str | None] = mapped_column(String(32))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id", ondelete="CASCADE"))
    #: The whistle that summoned the reader's unit (路长吹哨): report in on site.
    whistle_id: Mapped[int | None] = mapped_column(ForeignKey("whistles.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Webhook(TimestampMixin, Base):
    """A receiver of case events: signed (Standard Webhooks), retried until it answers."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    #: "whsec_" + base64: the shared key the receiver verifies signatures with.
    secret: Mapped[str] = mapped_column(String(100))
    #: Event types wanted ("case.dispatched"); empty: all.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class OutboxMessage(Base):
    """An event to deliver, written in the same transaction as the step it reports: so no
    step's message is lost, whatever the receivers do."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The `webhook-id` receivers deduplicate on.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to send (again) at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after webhook_max_attempts


class DeliveryError(StrEnum):
    """Why an attempt failed, as a class: what the receiver's network said in detail is
    not kept (the delivery log must not map the network for whoever reads it)."""

    ADDRESS_REFUSED = "address_refused"  # not a public address, nor an allowed one
    UNREACHABLE = "unreachable"  # no such name, or nothing listening there
    TIMED_OUT = "timed_out"  # no full answer within the attempt's time
    BAD_ANSWER = "bad_answer"  # not an HTTP answer
    HTTP_STATUS = "http_status"  # answered, but not 2xx (the code is `last_status_code`)
    WEBHOOK_DEACTIVATED = "webhook_deactivated"  # stopped before it was sent


class WebhookDelivery(Base):
    """One message to one webhook, and how its attempts went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "message_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    #: A `DeliveryError` value.
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
