"""Inbox and webhook schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator

from app.cases.models import CaseEventKind
from app.core.moments import LocalMoment
from app.core.pagination import Page
from app.notifications.models import DeliveryError, DeliveryStatus

#: Webhook event types beside the case events (`case.<kind>`).
WHISTLE_BLOWN = "whistle.blown"
OTHER_EVENT_TYPES = (WHISTLE_BLOWN,)


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # a Notification row as it is

    id: int
    created_at: LocalMoment
    kind: str = Field(description="The case event it announces (e.g. `dispatched`).")
    case_number: str | None
    whistle_id: int | None = Field(
        description="The whistle that summoned the reader's unit (`kind: whistle_summoned`)."
    )
    title: str
    body: str | None
    read_at: LocalMoment | None


class InboxPage(Page[NotificationOut]):
    unread_count: int


class MarkedRead(BaseModel):
    marked: int


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)]
    event_types: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Wanted types (`case.dispatched`, `case.overdue`, ..., `whistle.blown`); "
        "empty: all.",
    )

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        known = {f"case.{kind.value}" for kind in CaseEventKind} | set(OTHER_EVENT_TYPES)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"未知的事件类型：{'、'.join(unknown)}")
        return value


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # a Webhook row as it is

    id: int
    name: str
    url: str
    event_types: list[str]
    active: bool


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Shown once: verify `webhook-signature` with it (Standard Webhooks)."
    )


class DeliveryOut(BaseModel):
    id: int
    message_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: LocalMoment | None
    last_attempt_at: LocalMoment | None
    last_status_code: int | None
    last_error: DeliveryError | None = Field(
        description="Why the last attempt failed, as a class (the answer's code, if any, "
        "is `last_status_code`)."
    )
    delivered_at: LocalMoment | None
