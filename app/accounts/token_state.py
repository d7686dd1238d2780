"""Whether an access token still speaks for its user (令牌时效).

An access token carries the roles, scope, unit and chief level it was issued with. When
the account is disabled, its roles, level, unit or scope change, its password changes or
a stolen refresh token is caught, `end_access_tokens` moves the user's
`tokens_valid_after` to that instant, and every bearer request checks it: a token issued
before it answers `401 token_expired` (the app refreshes and gets a token with the new
rights, or finds its sign-in ended), a disabled account `401 account_disabled`.

The check reads two columns by primary key. Each process remembers what it read for
`token_state_cache_seconds` (5 s): the state lives in the database, so every server
process of a deployment agrees within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import AccountDisabled, TokenExpired, TokenInvalid, bearer_challenge
from app.accounts.models import User
from app.accounts.tokens import AccessToken

#: Users remembered per process: a small record each.
CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class TokenState:
    is_active: bool
    valid_after: datetime | None


class TokenStates:
    """Each user's token state, read through a per-process cache of `ttl_seconds`
    (0: no cache). `timer` is the cache's clock (tests pass one they can move)."""

    def __init__(self, ttl_seconds: float, *, timer: Callable[[], float] = time.monotonic) -> None:
        self._cache: TTLCache[int, TokenState | None] | None = (
            TTLCache(CACHE_SIZE, ttl_seconds, timer) if ttl_seconds > 0 else None
        )
        # Sync routes run in a thread pool; the cache is not thread-safe by itself.
        self._lock = threading.Lock()

    def remembered(self, user_id: int) -> tuple[bool, TokenState | None]:
        """(True, the state) when this process remembers the user's state; no I/O."""
        if self._cache is not None:
            with self._lock:
                if user_id in self._cache:
                    return True, self._cache[user_id]
        return False, None

    def get(self, session: Session, user_id: int) -> TokenState | None:
        """The user's state (None: no such user)."""
        known, state = self.remembered(user_id)
        if known:
            return state
        row = session.execute(
            select(User.is_active, User.tokens_valid_after).where(User.id == user_id)
        ).one_or_none()
        state = TokenState(row.is_active, row.tokens_valid_after) if row else None
        # End this read here: the route's own work starts a transaction of its own (on
        # SQLite a read transaction may not become a writer once another has written).
        session.commit()
        if self._cache is not None:
            with self._lock:
                self._cache[user_id] = state
        return state

    def require_current(self, session: Session, token: AccessToken) -> None:
        """401 unless the token's user exists, is active, and changed nothing since."""
        judge(self.get(session, token.principal.id), token)

    def require_remembered(self, token: AccessToken) -> bool:
        """`require_current` without I/O: False when the state must be read first."""
        known, state = self.remembered(token.principal.id)
        if known:
            judge(state, token)
        return known


def judge(state: TokenState | None, token: AccessToken) -> None:
    """401 unless the state says the token's user exists, is active and changed nothing
    since the token was issued."""
    if state is None:
        raise TokenInvalid("令牌对应的账号不存在", headers=bearer_challenge("invalid_token"))
    if not state.is_active:
        raise AccountDisabled(
            "该账号已停用，请联系管理员", headers=bearer_challenge("invalid_token")
        )
    if state.valid_after is not None and token.issued_at < state.valid_after.timestamp():
        raise TokenExpired(
            "账号的权限、范围、状态或密码已变更，请用刷新令牌换取新令牌",
            headers=bearer_challenge("invalid_token"),
        )


def end_access_tokens(user: User, now: datetime) -> None:
    """Refuse every access token of `user` issued before `now` (on every process within
    `token_state_cache_seconds`)."""
    user.tokens_valid_after = now
