"""Slowing and then refusing repeated failed sign-ins (登录失败限制).

Counted per account name and per client address, in the database so that every worker
process sees the same counts. After `free` failures each further attempt must wait
twice as long as the one before (1 s, 2 s, 4 s ... up to a minute); at `lock`
failures the key is refused outright for `login_lock_minutes`. A quiet spell as long
as the lock forgets the failures; a successful sign-in clears its account's count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.models import LoginThrottle
from app.core.config import Settings
from app.core.errors import Problem

MAX_DELAY_SECONDS = 60


class LoginThrottled(Problem):
    code = "login_throttled"
    status = 429
    title = "登录尝试过于频繁"


class LoginLocked(Problem):
    code = "login_locked"
    status = 429
    title = "登录失败次数过多，已暂时锁定"


@dataclass(frozen=True, slots=True)
class Limits:
    free: int
    lock: int


def _limits(settings: Settings) -> dict[str, Limits]:
    return {
        "account": Limits(settings.login_free_failures, settings.login_lock_failures),
        "address": Limits(
            settings.login_address_free_failures, settings.login_address_lock_failures
        ),
    }


def throttle_keys(username: str, client_address: str | None) -> list[str]:
    keys = [f"account:{username.strip().lower()}"]
    if client_address:
        keys.append(f"address:{client_address}")
    return keys


def _kind(key: str) -> str:
    return key.split(":", 1)[0]


def _rows(session: Session, keys: list[str]) -> dict[str, LoginThrottle]:
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys)).with_for_update()
    ).all()
    return {r.key: r for r in rows}


def _delay_seconds(failures: int, free: int) -> int:
    if failures < free:
        return 0
    return min(2 ** (failures - free), MAX_DELAY_SECONDS)


def check(session: Session, settings: Settings, keys: list[str], now: datetime) -> None:
    """Raise 429 (with Retry-After) if any key may not try now."""
    window = timedelta(minutes=settings.login_lock_minutes)
    limits = _limits(settings)
    for key, row in _rows(session, keys).items():
        if row.locked_until is not None and row.locked_until > now:
            wait = math.ceil((row.locked_until - now).total_seconds())
            raise LoginLocked(
                f"连续登录失败次数过多，请 {math.ceil(wait / 60)} 分钟后再试，或联系管理员",
                headers={"Retry-After": str(wait)},
                retry_after=wait,
                error="invalid_grant",
            )
        if now - row.last_failure_at > window:
            continue  # forgotten
        delay = _delay_seconds(row.failures, limits[_kind(key)].free)
        ready_at = row.last_failure_at + timedelta(seconds=delay)
        if ready_at > now:
            wait = math.ceil((ready_at - now).total_seconds())
            raise LoginThrottled(
                f"登录失败次数较多，请 {wait} 秒后再试",
                headers={"Retry-After": str(wait)},
                retry_after=wait,
                error="invalid_grant",
            )


def record_failure(session: Session, settings: Settings, keys: list[str], now: datetime) -> None:
    window = timedelta(minutes=settings.login_lock_minutes)
    limits = _limits(settings)
    rows = _rows(session, keys)
    for key in keys:
        row = rows.get(key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, last_failure_at=now)
            session.add(row)
        elif now - row.last_failure_at > window:
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= limits[_kind(key)].lock:
            row.locked_until = now + window


def clear_account(session: Session, username: str) -> None:
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.key == throttle_keys(username, None)[0])
    )
