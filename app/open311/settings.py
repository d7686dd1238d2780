"""Open311's own settings (environment variables `ROADCHIEF_OPEN311_*`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Open311Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROADCHIEF_OPEN311_", extra="ignore", frozen=True)

    rate_per_minute: int = Field(
        default=30, ge=1, description="Requests and updates one key may post per minute."
    )
    read_requires_key: bool = Field(
        default=False,
        description="Refuse anonymous reads of requests and updates (the spec lets anyone "
        "read them; a deployment may close them to its keys' holders).",
    )
    contact: str = Field(
        default="数字城管指挥中心（请在部署时设置 ROADCHIEF_OPEN311_CONTACT）",
        description="Discovery's `contact`: who answers for this endpoint.",
    )
    key_service: str = Field(
        default="接口密钥由系统管理员在 POST /api/v1/admin/api-keys 创建（access: open311）",
        description="Discovery's `key_service`: how a client gets an api_key.",
    )


@lru_cache
def open311_settings() -> Open311Settings:
    return Open311Settings()
