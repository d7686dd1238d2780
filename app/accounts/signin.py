"""Sign-in (登录): the password grant, rotating refresh tokens, logout, password change.

Each function commits its own work with the audit event describing it, or raises
before anything is written (failed password checks and caught refresh-token reuse are the
exceptions: their count, revocation and audit event are the point, so they are committed
before the 401/403).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.access.rules import AccountDisabled, Principal
from app.accounts import throttle
from app.accounts.models import RefreshToken, User
from app.accounts.passwords import check_password_strength, verify_password
from app.accounts.schemas import TokenPair
from app.accounts.service import (
    load_user,
    load_user_by_name,
    principal_for_user,
    require_user_principal,
    revoke_refresh_tokens,
    set_password,
)
from app.accounts.token_state import end_access_tokens
from app.accounts.tokens import issue_access_token, new_refresh_token, sha256_hex
from app.core.audit import AuditEventType, record
from app.core.database import utcnow
from app.core.errors import Problem

if TYPE_CHECKING:
    from app.settings import Settings

#: RFC 6749 §5.2: the token endpoint refuses a grant with 400 and `error: invalid_grant`,
#: whether the resource owner's password is wrong or the refresh token is invalid, expired,
#: revoked or reused (401 is for client authentication, which this endpoint has none of).
#: Each refusal keeps its stable `code` beside it.
INVALID_GRANT_STATUS = 400


class InvalidCredentials(Problem):
    code = "invalid_credentials"
    status = INVALID_GRANT_STATUS
    title = "用户名或密码错误"


class RefreshTokenInvalid(Problem):
    code = "refresh_token_invalid"
    status = INVALID_GRANT_STATUS
    title = "刷新令牌无效"


class RefreshTokenExpired(Problem):
    code = "refresh_token_expired"
    status = INVALID_GRANT_STATUS
    title = "刷新令牌已过期"


class RefreshTokenReused(Problem):
    code = "refresh_token_reused"
    status = INVALID_GRANT_STATUS
    title = "刷新令牌被重复使用"


def invalid_grant(problem: type[Problem], detail: str, description: str) -> Problem:
    """A refused grant as OAuth 2.0 answers it: 400, `error: invalid_grant` and an
    `error_description` (ASCII, as RFC 6749 requires), beside the problem's own fields."""
    return problem(
        detail, status=INVALID_GRANT_STATUS, error="invalid_grant", error_description=description
    )


def _account_disabled() -> Problem:
    # `account_disabled` is a 401 for a bearer token; at the token endpoint, a refused grant.
    return invalid_grant(AccountDisabled, "该账号已停用，请联系管理员", "The account is disabled.")


class CurrentPasswordIncorrect(Problem):
    code = "current_password_incorrect"
    status = 403
    title = "当前密码不正确"


# --- sign-in and tokens --------------------------------------------------------------------


def _issue_pair(
    session: Session, settings: Settings, user: User, family: str, now: datetime
) -> tuple[TokenPair, RefreshToken]:
    token, token_hash = new_refresh_token()
    lifetime = timedelta(days=settings.refresh_token_days)
    row = RefreshToken(
        user_id=user.id,
        family=family,
        token_hash=token_hash,
        issued_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    pair = TokenPair(
        access_token=issue_access_token(principal_for_user(user), now, settings),
        expires_in=settings.access_token_minutes * 60,
        refresh_token=token,
        refresh_expires_in=int(lifetime.total_seconds()),
    )
    return pair, row


def _new_family() -> str:
    return secrets.token_hex(16)


def _check_typed_password(
    session: Session,
    settings: Settings,
    *,
    name: str,
    user: User | None,
    password: str,
    client_address: str | None,
    now: datetime,
    during: str,
    failed: AuditEventType,
    refusal: Problem,
    actor: Principal | None = None,
    **extra: Any,
) -> tuple[throttle.Keys, str | None]:
    """Check a password someone typed for account `name`, under the throttle that sign-in
    and password change share. Returns the throttle keys and, when the stored hash should
    be upgraded, the new hash. A refusal (throttled, or the wrong password) is counted
    and audited, committed, and raised; `extra` goes into throttle problems."""
    keys = throttle.throttle_keys(name, client_address)
    try:
        throttle.check(session, settings, keys, now, **extra)
    except Problem:
        record(
            session,
            AuditEventType.LOGIN_THROTTLED,
            actor=actor,
            subject_user_id=user.id if user else None,
            username=name,
            client_address=client_address,
            during=during,
        )
        session.commit()
        raise
    matches, new_hash = verify_password(password, user.password_hash if user else None, settings)
    if user is None or not matches:
        throttle.record_failure(session, settings, keys, now)
        record(
            session,
            failed,
            actor=actor,
            subject_user_id=user.id if user else None,
            username=name,
            client_address=client_address,
            reason="bad_password" if user else "unknown_user",
        )
        session.commit()
        raise refusal
    return keys, new_hash


def login(
    session: Session,
    settings: Settings,
    username: str,
    password: str,
    client_address: str | None,
) -> TokenPair:
    """OAuth2 password grant. Failures are slowed, then refused (`throttle`); every
    outcome is audited."""
    now = utcnow()
    name = username.strip().lower()
    user = load_user_by_name(session, name)
    keys, new_hash = _check_typed_password(
        session,
        settings,
        name=name,
        user=user,
        password=password,
        client_address=client_address,
        now=now,
        during="sign_in",
        failed=AuditEventType.LOGIN_FAILED,
        refusal=invalid_grant(
            InvalidCredentials,
            "用户名或密码错误；多次失败后将暂时限制登录",
            "The username or password is wrong.",
        ),
        error="invalid_grant",
    )
    assert user is not None  # a wrong name was refused above
    if not user.is_active:
        record(
            session,
            AuditEventType.LOGIN_FAILED,
            subject_user_id=user.id,
            username=name,
            client_address=client_address,
            reason="disabled",
        )
        session.commit()
        raise _account_disabled()
    if new_hash is not None:
        user.password_hash = new_hash
    throttle.record_success(session, keys, now)
    pair, _ = _issue_pair(session, settings, user, _new_family(), now)
    record(
        session,
        AuditEventType.LOGIN_SUCCEEDED,
        actor=principal_for_user(user),
        subject_user_id=user.id,
        username=name,
        client_address=client_address,
    )
    session.commit()
    return pair


def _family_alive(session: Session, family: str, now: datetime) -> bool:
    """Whether the sign-in still has a token that could be exchanged."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    RefreshToken.family == family,
                    RefreshToken.revoked_at.is_(None),
                    RefreshToken.used_at.is_(None),
                    RefreshToken.expires_at > now,
                )
            )
        )
    )


def _reused(
    session: Session,
    user: User,
    row: RefreshToken,
    client_address: str | None,
    now: datetime,
    why: str,
) -> Problem:
    """A copied refresh token: end the sign-in and the user's access tokens (the thief's
    among them; other devices refresh once), audit it, commit; the problem to raise."""
    revoke_refresh_tokens(session, "reused", now, family=row.family)
    end_access_tokens(user, now)
    record(
        session,
        AuditEventType.REFRESH_TOKEN_REUSED,
        subject_user_id=user.id,
        username=user.username,
        client_address=client_address,
        family=row.family,
        token_state=why,
    )
    session.commit()
    return invalid_grant(
        RefreshTokenReused,
        "该刷新令牌已使用过或已作废，可能已泄露；此登录下的所有令牌已作废，请重新登录",
        "The refresh token was used before: every token of this sign-in is revoked.",
    )


def refresh(
    session: Session, settings: Settings, refresh_token: str, client_address: str | None
) -> TokenPair:
    """Exchange a refresh token for a new pair; the old token is spent (rotation).

    A token presented again means it was copied: a spent one (unless it is a retry, below),
    or a revoked one while its sign-in still has a live token (a thief's retry killed the
    phone's token, and the phone comes back with it). Either way the whole family (every
    token descended from that sign-in) is revoked and the user's access tokens end.
    The one exception is a phone retrying within `refresh_retry_seconds` because the
    answer to its first try was lost: its successor was never used, so it is revoked and
    replaced instead, and audited.
    """
    now = utcnow()
    row = session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == sha256_hex(refresh_token))
        .with_for_update()
    )
    if row is None:
        raise invalid_grant(
            RefreshTokenInvalid, "刷新令牌无效，请重新登录", "The refresh token is unknown."
        )
    user = load_user(session, row.user_id)
    assert user is not None  # the foreign key cascades
    if row.revoked_at is not None:
        if _family_alive(session, row.family, now):
            raise _reused(session, user, row, client_address, now, "revoked")
        raise invalid_grant(
            RefreshTokenInvalid, "刷新令牌已失效，请重新登录", "The refresh token is revoked."
        )
    first_used_at = row.used_at
    if first_used_at is not None:
        successor = session.get(RefreshToken, row.replaced_by_id) if row.replaced_by_id else None
        retried = (
            now - first_used_at <= timedelta(seconds=settings.refresh_retry_seconds)
            and successor is not None
            and successor.used_at is None
            and successor.revoked_at is None
        )
        if not retried:
            raise _reused(session, user, row, client_address, now, "spent")
        assert successor is not None
        successor.revoked_at, successor.revoked_reason = now, "retried"
    if row.expires_at <= now:
        raise invalid_grant(
            RefreshTokenExpired, "登录已超过有效期，请重新登录", "The refresh token has expired."
        )
    if not user.is_active:
        raise _account_disabled()
    pair, new_row = _issue_pair(session, settings, user, row.family, now)
    if first_used_at is not None:  # a retry (anything else was refused above)
        record(
            session,
            AuditEventType.REFRESH_TOKEN_RETRIED,
            subject_user_id=user.id,
            username=user.username,
            client_address=client_address,
            family=row.family,
            seconds_after_first_use=round((now - first_used_at).total_seconds(), 1),
        )
    row.used_at = first_used_at or now
    row.replaced_by_id = new_row.id
    session.commit()
    return pair


def logout(session: Session, refresh_token: str, client_address: str | None) -> None:
    """Revoke the refresh token's family (this device's sign-in). Unknown tokens: no-op."""
    now = utcnow()
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
    )
    if row is None or row.revoked_at is not None:
        return
    revoke_refresh_tokens(session, "logout", now, family=row.family)
    record(
        session,
        AuditEventType.LOGOUT,
        subject_user_id=row.user_id,
        client_address=client_address,
        family=row.family,
    )
    session.commit()


def change_own_password(
    session: Session,
    settings: Settings,
    principal: Principal,
    current_password: str,
    new_password: str,
    client_address: str | None,
) -> TokenPair:
    """Change the caller's password. The current password is checked under the same
    throttle as sign-in (a stolen access token must not become an unlimited oracle) and
    each failure is audited. Every refresh token and every other access token dies; a new
    pair is issued so this device stays signed in."""
    user = require_user_principal(session, principal)
    now = utcnow()
    keys, _ = _check_typed_password(
        session,
        settings,
        name=user.username,
        user=user,
        password=current_password,
        client_address=client_address,
        now=now,
        during="password_change",
        failed=AuditEventType.PASSWORD_CHANGE_FAILED,
        refusal=CurrentPasswordIncorrect("当前密码不正确；多次错误后将暂时锁定"),
        actor=principal,
    )
    check_password_strength(new_password, user.username)
    set_password(user, new_password, settings, now, must_change=False)
    revoke_refresh_tokens(session, "password_changed", now, user_id=user.id)
    end_access_tokens(user, now)
    throttle.record_success(session, keys, now)
    pair, _ = _issue_pair(session, settings, user, _new_family(), now)
    record(
        session,
        AuditEventType.PASSWORD_CHANGED,
        actor=principal,
        subject_user_id=user.id,
        client_address=client_address,
    )
    session.commit()
    return pair
