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
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import jwt
from cachetools import LRUCache
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import NullPool

from app.access.rules import (
    Principal,
    TokenExpired,
    TokenInvalid,
    bearer_challenge,
)
from app.accounts.models import Role, SigningKey
from app.core.database import Database, create_db_engine, utcnow

if TYPE_CHECKING:
    from app.settings import Settings

ISSUER = "roadchief"
ALGORITHM = "HS256"
API_KEY_PREFIX = "rck_"


#: The database's key per database URL, read once per process (it never changes).
_shared_keys: dict[str, bytes] = {}
#: Where each database URL's key is read from: the app's database, registered at start.
_key_databases: dict[str, Database] = {}


def share_signing_key(database: Database, settings: Settings) -> None:
    """Read the key through this database when it is first needed (`create_app`)."""
    _key_databases.setdefault(settings.database_url, database)


def signing_key(settings: Settings) -> bytes:
    """ROADCHIEF_SECRET_KEY, or the key every server of the deployment shares in the
    database (`signing_keys`, written by the migration that made it)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    key = _shared_keys.get(settings.database_url)
    if key is None:
        database = _key_databases.get(settings.database_url)
        if database is None:  # a tool without an app (the CLI): a short-lived engine of
            # its own, through the app's driver (two SQLite libraries in one process would
            # break each other's file locks)
            engine = create_db_engine(settings.database_url, settings, poolclass=NullPool)
            try:
                key = database_key(Database(engine), settings)
            finally:
                engine.dispose()
        else:
            key = database_key(database, settings)
        _shared_keys[settings.database_url] = key
    return key


def database_key(database: Database, settings: Settings) -> bytes:
    """The key row, read without taking SQLite's write lock (the caller may hold it: a
    sign-in's session). Written if missing (the migration writes it; a row deleted by
    hand): two servers both insert the one row with id 1 and ignore a conflict, then both
    read the winner's key. An old single-host key file (ROADCHIEF_SECRET_KEY_FILE) becomes
    the key, so that tokens it signed stay valid."""
    table = cast(Table, SigningKey.__table__)
    query = select(table.c.secret).where(table.c.id == 1)
    with database.read_engine.connect() as conn:
        secret = conn.scalar(query)
    if secret is None:
        path = settings.secret_key_file.resolve()
        candidate = path.read_text().strip() if path.is_file() else ""
        if len(candidate) < 32:
            candidate = secrets.token_urlsafe(48)
        with database.engine.connect() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                insert(table)
                .values(id=1, secret=candidate, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["id"])
            )
            conn.commit()
            secret = conn.scalar(query)
    if secret is None or len(secret) < 32:
        raise RuntimeError("signing_keys: the shared key is missing or shorter than 32 characters")
    return str(secret).encode()


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


#: Access tokens this process has verified, each with its expiry: an app sends the same
#: token with every request, and checking its signature and claims again cost a third of
#: a `locate` (bench/README.md, `overhead`). Keyed by the signing key too, so a new key
#: verifies afresh. Only well-signed tokens get in, and the expiry is checked at each use.
_VERIFIED: LRUCache[tuple[bytes, str], tuple[AccessToken, float]] = LRUCache(10_000)
_VERIFIED_LOCK = threading.Lock()
#: Seconds of clock skew allowed on `exp` (PyJWT's `leeway`).
LEEWAY = 5


def read_access_token(token: str, settings: Settings) -> AccessToken:
    """The claims of a well-signed, unexpired access token; 401 problems otherwise.
    Whether its user still stands behind it is `token_state`'s question."""
    key = signing_key(settings)
    with _VERIFIED_LOCK:
        verified = _VERIFIED.get((key, token))
    if verified is not None:
        access, expires = verified
        if expires > time.time() - LEEWAY:
            return access
    access, expires = _verify_access_token(token, key)
    with _VERIFIED_LOCK:
        _VERIFIED[(key, token)] = (access, expires)
    return access


def _verify_access_token(token: str, key: bytes) -> tuple[AccessToken, float]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
            leeway=LEEWAY,
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
        return AccessToken(principal, float(claims["iat"])), float(claims["exp"])
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
