"""Audit log as the API shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.audit.models import AuditEventType
from app.core.moments import LocalMoment


class AuditEventOut(BaseModel):
    id: int
    occurred_at: LocalMoment = Field(description="In the service's time zone (Asia/Shanghai).")
    event: AuditEventType
    actor_username: str | None = Field(description="The user who acted, if any.")
    actor_api_key: str | None = Field(description="The API key that acted, if any.")
    subject_username: str | None = Field(description="Whose access the event concerns.")
    username: str | None = Field(description="The name typed at sign-in.")
    client_address: str | None
    detail: dict[str, Any]
