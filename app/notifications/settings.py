"""Webhook delivery's settings (`ROADCHIEF_WEBHOOK_*`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.core.config import ENV_CONFIG, split_list


class NotificationSettings(BaseSettings):
    """How webhooks are delivered, and where they may go."""

    model_config = ENV_CONFIG

    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="The longest one delivery attempt may take, from connecting to the "
        "answer's headers, however slowly the receiver answers.",
    )
    webhook_allowed_networks: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=(),
        description="Networks webhooks may reach although they are not public (loopback, "
        "private, link-local...): 'CIDR,CIDR'. Empty: public addresses only.",
    )

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        return split_list(value)
