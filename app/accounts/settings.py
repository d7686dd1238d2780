"""Sign-in and token settings (`ROADCHIEF_ACCESS_TOKEN_MINUTES`, `ROADCHIEF_LOGIN_*`...):
how long tokens live, what a password hash costs, when failures slow and lock. The
signing secret itself is the core's (`CoreSettings.secret_key`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from app.core.config import ENV_CONFIG


class AccountSettings(BaseSettings):
    """How accounts sign in and stay signed in."""

    model_config = ENV_CONFIG

    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    #: A refresh token presented again this soon after its rotation, while its successor
    #: is still unused, is a phone retrying after a lost answer, not a thief.
    refresh_retry_seconds: int = Field(default=30, ge=0, le=300)
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024, le=1048576)
    login_free_failures: int = Field(
        default=3, ge=1, description="Per account (and per account and address), before slowing."
    )
    login_lock_failures: int = Field(
        default=10, ge=2, description="Per account and address, then locked."
    )
    login_address_free_failures: int = Field(default=20, ge=1)
    login_address_lock_failures: int = Field(default=100, ge=2)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_known_address_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="An address the account signed in from this recently is not slowed by "
        "failures from elsewhere.",
    )
    token_state_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a process trusts what it last read of a user's token state "
        "(disabled, tokens valid after); 0 reads it on every request.",
    )
