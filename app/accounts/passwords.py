"""Password hashing (Argon2id through pwdlib) and the strength rules (口令复杂度)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.errors import FieldError, Problem

if TYPE_CHECKING:
    from app.settings import Settings

MIN_LENGTH = 8
MAX_LENGTH = 128
#: Of lower case, upper case, digits and symbols, at least this many kinds
#: (the usual rule of China's 等级保护 2.0 baseline).
MIN_CHARACTER_KINDS = 3

# The most common passwords in Chinese leaks, lower-cased; a real deployment may extend it.
_COMMON = frozenset(
    {
        "123456",
        "12345678",
        "123456789",
        "a123456",
        "a12345678",
        "qwerty123",
        "password",
        "password1",
        "p@ssw0rd",
        "admin123",
        "admin@123",
        "abc123456",
        "woaini1314",
        "1qaz2wsx",
        "1qaz@wsx",
        "qwe123!@#",
        "aa123456",
        "abcd1234",
        "abc@1234",
        "zxcvbnm123",
    }
)


class WeakPassword(Problem):
    code = "weak_password"
    status = 422
    title = "密码不符合安全要求"


@lru_cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))


def _configured(settings: Settings) -> PasswordHash:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


def hash_password(password: str, settings: Settings) -> str:
    return _configured(settings).hash(password)


def verify_password(
    password: str, password_hash: str | None, settings: Settings
) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one has other parameters than configured).

    With no hash (the account does not exist) a dummy hash is verified all the same,
    so the answer takes as long and timing does not tell which names exist.
    """
    if password_hash is None:
        _configured(settings).verify(
            password, _dummy(settings.argon2_time_cost, settings.argon2_memory_kib)
        )
        return False, None
    return _configured(settings).verify_and_update(password, password_hash)


@lru_cache
def _dummy(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash("roadchief-dummy-password-for-timing")


def password_problems(password: str, username: str | None = None) -> list[FieldError]:
    """Each strength rule the password breaks, with its rule code and a Chinese message."""

    def broken(rule: str, message: str) -> FieldError:
        return FieldError(loc=["password"], code=rule, message=message)

    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(broken("password_too_short", f"密码至少 {MIN_LENGTH} 位"))
    if len(password) > MAX_LENGTH:
        problems.append(broken("password_too_long", f"密码最多 {MAX_LENGTH} 位"))
    kinds = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if kinds < MIN_CHARACTER_KINDS:
        problems.append(
            broken(
                "password_too_simple",
                f"密码须包含小写字母、大写字母、数字、符号中的至少 {MIN_CHARACTER_KINDS} 种",
            )
        )
    if password.lower() in _COMMON:
        problems.append(broken("password_too_common", "该密码过于常见，请换一个"))
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append(broken("password_contains_username", "密码不能包含用户名"))
    return problems


def check_password_strength(password: str, username: str | None = None) -> None:
    """Raise 422 `weak_password` naming every rule the password breaks."""
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword("；".join(p.message for p in problems), errors=problems)
