"""API keys (接口密钥) for machine clients: read-only (or Open311 submit), scoped,
revocable, hashed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from app.access.rules import ApiKeyInvalid, Permission, Principal, bearer_challenge
from app.accounts.models import ApiKey, ApiKeyJurisdiction
from app.accounts.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.accounts.service import jurisdiction_refs, jurisdictions_by_code, scope_paths
from app.accounts.tokens import api_key_matches, api_key_prefix, new_api_key
from app.core.audit import AuditEventType, record
from app.core.database import utcnow
from app.core.errors import FieldError, NotFound, Problem

#: What an Open311 key may do beyond reading: submit through the Open311 routes only.
OPEN311_KEY_GRANTS = frozenset({Permission.OPEN311_SUBMIT})


class ApiKeyScopeInvalid(Problem):
    code = "api_key_invalid_scope"
    status = 422
    title = "接口密钥的范围无效"


def api_key_invalid() -> ApiKeyInvalid:
    return ApiKeyInvalid("接口密钥无效、已撤销或已过期", headers=bearer_challenge())


def principal_from_api_key(
    session: Session, key: str, now: datetime, touch_every: timedelta = timedelta(minutes=1)
) -> Principal:
    """The principal of a valid, unrevoked, unexpired API key (401 otherwise).

    `last_used_at` is written at most once a minute per key, so a nightly sync pulling
    thousands of pages does not write on every request.
    """
    invalid = api_key_invalid()
    prefix = api_key_prefix(key)
    if prefix is None:
        raise invalid
    row = session.scalar(
        select(ApiKey)
        .where(ApiKey.prefix == prefix)
        .options(selectinload(ApiKey.scope_rows).selectinload(ApiKeyJurisdiction.jurisdiction))
    )
    if (
        row is None
        or not api_key_matches(key, row.key_hash)
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
    ):
        raise invalid
    if row.last_used_at is None or now - row.last_used_at >= touch_every:
        # A key's requests only read, in a read-only session: the write goes first in a
        # transaction of its own, so on SQLite it waits for the lock instead of failing.
        session.commit()
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    return Principal(
        kind="api_key",
        id=row.id,
        name=row.name,
        scope_paths=scope_paths(row.scope_rows),
        read_only=True,
        grants=OPEN311_KEY_GRANTS if row.access == "open311" else frozenset(),
    )


# --- API keys (admin) ----------------------------------------------------------------------


def _api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=f"rck_{key.prefix}",
        access=key.access,  # type: ignore[arg-type]
        jurisdictions=jurisdiction_refs(key.scope_rows),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def create_api_key(session: Session, principal: Principal, data: ApiKeyCreate) -> ApiKeyCreated:
    principal.require(Permission.API_KEYS_MANAGE)
    jurisdictions, errors = jurisdictions_by_code(
        session, data.jurisdiction_codes, "jurisdiction_codes"
    )
    if data.expires_at is not None and data.expires_at <= utcnow():
        errors.append(
            FieldError(loc=["expires_at"], code="expires_in_past", message="过期时间须晚于现在")
        )
    if errors:
        raise ApiKeyScopeInvalid("请检查标出的字段", errors=errors)
    key, prefix, key_hash = new_api_key()
    row = ApiKey(
        name=data.name,
        prefix=prefix,
        key_hash=key_hash,
        created_by_id=principal.user_id,
        expires_at=data.expires_at,
        access=data.access,
        scope_rows=[ApiKeyJurisdiction(jurisdiction=j) for j in jurisdictions],
    )
    session.add(row)
    session.flush()
    record(
        session,
        AuditEventType.API_KEY_CREATED,
        actor=principal,
        api_key_id=row.id,
        name=row.name,
        access=row.access,
        scope=sorted(j.code for j in jurisdictions),
    )
    session.commit()
    return ApiKeyCreated(**_api_key_out(row).model_dump(), key=key)


def _load_api_key(session: Session, key_id: int) -> ApiKey | None:
    return session.scalar(
        select(ApiKey)
        .where(ApiKey.id == key_id)
        .options(selectinload(ApiKey.scope_rows).selectinload(ApiKeyJurisdiction.jurisdiction))
    )


def list_api_keys(session: Session, principal: Principal) -> list[ApiKeyOut]:
    principal.require(Permission.API_KEYS_MANAGE)
    keys = session.scalars(
        select(ApiKey)
        .options(selectinload(ApiKey.scope_rows).selectinload(ApiKeyJurisdiction.jurisdiction))
        .order_by(ApiKey.id)
    ).all()
    return [_api_key_out(k) for k in keys]


def revoke_api_key(session: Session, principal: Principal, key_id: int) -> ApiKeyOut:
    """Revoke a key (idempotent: revoking twice keeps the first time)."""
    principal.require(Permission.API_KEYS_MANAGE)
    key = _load_api_key(session, key_id)
    if key is None:
        raise NotFound("接口密钥不存在")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(
            session,
            AuditEventType.API_KEY_REVOKED,
            actor=principal,
            api_key_id=key.id,
            name=key.name,
        )
        session.commit()
    return _api_key_out(key)
