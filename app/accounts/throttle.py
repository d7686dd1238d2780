"""Slowing and then refusing repeated failed password checks (登录失败限制).

Every check of a password someone types (sign-in, and the current password of a
password change) is counted under three keys, in the database so that every worker
process sees the same counts:

- the account from one client address (`pair`): slowed after `login_free_failures`,
  locked at `login_lock_failures`;
- the client address (`address`): slowed after `login_address_free_failures`, locked at
  `login_address_lock_failures` (one address guessing many names);
- the account from anywhere (`account`): slowed after `login_free_failures`, never locked
  (many addresses guessing one name), and skipped for an address the account signed in
  from within `login_known_address_days`.

So a stranger who fails ten times locks the account out of the stranger's own address
only: the dispatcher at their usual desk is neither locked nor slowed by it.

Slowed: each further attempt must wait twice as long as the one before (1 s, 2 s, 4 s
... up to a minute). Locked: refused outright for `login_lock_minutes`, even with the
right password. A quiet spell as long as the lock forgets the failures; a success
clears its account's and its pair's counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import LoginThrottle
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings

MAX_DELAY_SECONDS = 60
#: Stands for the address when the server does not know it (a Unix socket).
UNKNOWN_ADDRESS = "unknown"


_RETRY_AFTER = {"Retry-After": "Seconds to wait before signing in again."}


class LoginThrottled(Problem):
    code = "login_throttled"
    status = 429
    title = "登录尝试过于频繁"
    answer_headers = _RETRY_AFTER


class LoginLocked(Problem):
    code = "login_locked"
    status = 429
    title = "登录失败次数过多，已暂时锁定"
    answer_headers = _RETRY_AFTER


@dataclass(frozen=True, slots=True)
class Limits:
    free: int
    #: None: slowed, never locked.
    lock: int | None


def _limits(settings: Settings) -> dict[str, Limits]:
    return {
        "pair": Limits(settings.login_free_failures, settings.login_lock_failures),
        "account": Limits(settings.login_free_failures, None),
        "address": Limits(
            settings.login_address_free_failures, settings.login_address_lock_failures
        ),
    }


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys one password check is counted under."""

    account: str
    pair: str
    address: str | None

    @property
    def all(self) -> list[str]:
        return [k for k in (self.pair, self.account, self.address) if k is not None]


def throttle_keys(username: str, client_address: str | None) -> Keys:
    name = username.strip().lower()
    return Keys(
        account=f"account:{name}",
        # The address first: it never holds "|", so no two pairs share a key.
        pair=f"pair:{client_address or UNKNOWN_ADDRESS}|{name}",
        address=f"address:{client_address}" if client_address else None,
    )


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _rows(session: Session, keys: Keys) -> dict[str, LoginThrottle]:
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys.all)).with_for_update()
    ).all()
    return {r.key: r for r in rows}


def _new_row(session: Session, key: str) -> LoginThrottle:
    """A row for `key`; if a concurrent request has just made it, that one."""
    try:
        with session.begin_nested():
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
    except IntegrityError:
        row = session.scalars(
            select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
        ).one()
    return row


def _delay_seconds(failures: int, free: int) -> int:
    if failures < free:
        return 0
    return min(2 ** (failures - free), MAX_DELAY_SECONDS)


def _known(row: LoginThrottle | None, settings: Settings, now: datetime) -> bool:
    """Whether the account signed in from this address recently."""
    if row is None or row.last_success_at is None:
        return False
    return now - row.last_success_at <= timedelta(days=settings.login_known_address_days)


def check(session: Session, settings: Settings, keys: Keys, now: datetime, **extra: Any) -> None:
    """Raise 429 (with Retry-After; `extra` goes into the problem) if any key may not try
    now."""
    window = timedelta(minutes=settings.login_lock_minutes)
    limits = _limits(settings)
    rows = _rows(session, keys)
    if _known(rows.get(keys.pair), settings, now):
        rows.pop(keys.account, None)
    locked_until = max((r.locked_until for r in rows.values() if r.locked_until), default=None)
    if locked_until is not None and locked_until > now:
        wait = math.ceil((locked_until - now).total_seconds())
        raise LoginLocked(
            f"连续密码错误次数过多，请 {math.ceil(wait / 60)} 分钟后再试，或联系管理员",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
            **extra,
        )
    ready_at = now
    for key, row in rows.items():
        if row.last_failure_at is None or now - row.last_failure_at > window:
            continue  # none, or forgotten
        delay = _delay_seconds(row.failures, limits[_kind(key)].free)
        ready_at = max(ready_at, row.last_failure_at + timedelta(seconds=delay))
    if ready_at > now:
        wait = math.ceil((ready_at - now).total_seconds())
        raise LoginThrottled(
            f"密码错误次数较多，请 {wait} 秒后再试",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
            **extra,
        )


def record_failure(session: Session, settings: Settings, keys: Keys, now: datetime) -> None:
    window = timedelta(minutes=settings.login_lock_minutes)
    limits = _limits(settings)
    rows = _rows(session, keys)
    for key in keys.all:
        row = rows.get(key) or _new_row(session, key)
        if row.last_failure_at is None or now - row.last_failure_at > window:
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.last_failure_at = now
        lock = limits[_kind(key)].lock
        if lock is not None and row.failures >= lock:
            row.locked_until = now + window


def record_success(session: Session, keys: Keys, now: datetime) -> None:
    """The right password: forget the account's failures, and remember that it signed in
    from this address."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys.account))
    pair = _rows(session, keys).get(keys.pair) or _new_row(session, keys.pair)
    pair.failures, pair.last_failure_at, pair.locked_until = 0, None, None
    pair.last_success_at = now
