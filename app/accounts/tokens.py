"""Access tokens (JWT, HS256), refresh tokens and API keys: making and checking them.

An access token carries everything authorization needs (roles, scope, unit, chief
level); whether its user still stands behind it (not disabled, nothing changed since it
was issued) is checked by `token_state`. Refresh tokens and API keys are
random secrets stored only as SHA-256 hashes: they are long and random, so a slow hash
would add nothing but latency.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt

from app.accounts.access import (
    NotAuthenticated,
    Principal,
    TokenExpired,
    TokenInvalid,
    bearer_challenge,
)
from app.accounts.models import Role
from app.core.config import Settings

ISSUER = "roadchief"
ALGORITHM = "HS256"
API_KEY_PREFIX = "rck_"


def signing_key(settings: Settings) -> bytes:
    """ROADCHIEF_SECRET_KEY, or the key kept in secret_key_file (made on first use)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return _key_from_file(settings.secret_key_file.resolve())


@lru_cache
def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two workers starting at once must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path}: the secret key must be at least 32 characters")
    return key.encode()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_access_token(principal: Principal, now: datetime, settings: Settings) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(principal.id),
        "typ": "access",
        # To the microsecond (RFC 7519 allows a fraction): a token issued by the very
        # request that moves `tokens_valid_after` (a password change) is not before it.
        "iat": now.timestamp(),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "name": principal.name,
        "roles": sorted(principal.roles),
        "scope": list(principal.scope_paths),
    }
    if principal.chief_level is not None:
        claims["lvl"] = principal.chief_level
    if principal.unit_code is not None:
        claims["unit"] = principal.unit_code
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a valid access token says: who, with which rights, issued when."""

    principal: Principal
    #: POSIX seconds (with a fraction); compared with the user's `tokens_valid_after`.
    issued_at: float


def read_access_token(token: str, settings: Settings) -> AccessToken:
    """The claims of a well-signed, unexpired access token; 401 problems otherwise.
    Whether its user still stands behind it is `token_state`'s question."""
    try:
        claims = jwt.decode(
            token,
            signing_key(settings),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired(
            "访问令牌已过期，请用刷新令牌换取新令牌", headers=bearer_challenge("invalid_token")
        ) from None
    except jwt.InvalidTokenError:
        raise TokenInvalid("访问令牌无法验证", headers=bearer_challenge("invalid_token")) from None
    try:
        if claims.get("typ") != "access":
            raise ValueError("not an access token")
        principal = Principal(
            kind="user",
            id=int(claims["sub"]),
            name=str(claims["name"]),
            roles=frozenset(Role(r) for r in claims["roles"]),
            scope_paths=tuple(str(p) for p in claims["scope"]),
            chief_level=claims.get("lvl"),
            unit_code=claims.get("unit"),
        )
        return AccessToken(principal, float(claims["iat"]))
    except (KeyError, ValueError, TypeError):
        raise TokenInvalid(
            "访问令牌内容不完整", headers=bearer_challenge("invalid_token")
        ) from None


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def new_api_key() -> tuple[str, str, str]:
    """(key for the client, public prefix, hash to store)."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, sha256_hex(key)


def api_key_prefix(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(API_KEY_PREFIX) :].partition("_")
    return prefix if sep and len(prefix) == 12 and rest else None


def api_key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(sha256_hex(key), key_hash)


def missing_credentials() -> NotAuthenticated:
    return NotAuthenticated(
        "请先登录（Authorization: Bearer 访问令牌）或提供接口密钥（X-API-Key）",
        headers=bearer_challenge(),
    )
