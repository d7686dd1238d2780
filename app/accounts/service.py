"""Accounts: users and their scope, road chiefs' segments, `/me`.

Every function that reads or changes accounts takes the caller's `Principal` and asks
`app.access.rules` whether it may. Each public function that changes state commits
its own work (with the audit event describing it) or raises before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, joinedload, selectinload

from app.access.rules import AccountDisabled, Forbidden, Permission, Principal
from app.accounts.models import (
    ApiKey,
    ApiKeyJurisdiction,
    RefreshToken,
    Role,
    SegmentChief,
    User,
    UserJurisdiction,
    UserRole,
)
from app.accounts.passwords import check_password_strength, hash_password
from app.accounts.schemas import (
    ChiefSegment,
    JurisdictionRef,
    MeOut,
    UnitRef,
    UserCreate,
    UserOut,
    UserUpdate,
)
from app.accounts.token_state import end_access_tokens
from app.core.audit import AuditEventType, record
from app.core.database import utcnow
from app.core.errors import FieldError, NotFound, Problem
from app.core.pagination import Keyset
from app.territory.models import Jurisdiction, RoadGrade, RoadSegment, Unit
from app.territory.service import UnknownUnit

if TYPE_CHECKING:
    from app.settings import Settings

#: The segment-chief link table, for bulk deletes (typed: `__table__` is any FromClause).
_SEGMENT_CHIEFS = cast(Table, SegmentChief.__table__)

# --- problems ------------------------------------------------------------------------------

#: A chief's segments in code order; users in the order they were created.
SEGMENTS_BY_CODE = Keyset(RoadSegment.code)
USERS_BY_ID = Keyset(User.id)


class UsernameTaken(Problem):
    code = "username_taken"
    status = 409
    title = "用户名已被使用"


class UserInvalid(Problem):
    code = "user_invalid"
    status = 422
    title = "用户信息不完整或相互矛盾"


class CannotLockOutSelf(Problem):
    code = "cannot_lock_out_self"
    status = 409
    title = "不能停用自己或取消自己的管理员角色"


class SegmentsInvalid(Problem):
    code = "segments_invalid"
    status = 422
    title = "路段无法分配"


class SegmentsHaveChief(Problem):
    code = "segments_have_chief"
    status = 409
    title = "路段已有同级路长"


# --- principals ----------------------------------------------------------------------------


def scope_paths(rows: Iterable[UserJurisdiction | ApiKeyJurisdiction]) -> tuple[str, ...]:
    return tuple(sorted(r.jurisdiction.path for r in rows))


def principal_for_user(user: User) -> Principal:
    return Principal(
        kind="user",
        id=user.id,
        name=user.username,
        roles=frozenset(user.roles),
        scope_paths=scope_paths(user.scope_rows),
        chief_level=user.chief_level,
        unit_code=user.unit.code if user.unit else None,
    )


#: A user with roles, scope and unit, in two round trips. Built once: building loader
#: options per call cost more than running them (a profile of `GET /me`).
_LOAD_USER = (
    select(User)
    .where(User.id == bindparam("user_id"))
    .options(
        selectinload(User.role_rows),
        # The scope's jurisdictions with their rows, without their outlines.
        selectinload(User.scope_rows)
        .joinedload(UserJurisdiction.jurisdiction)
        .defer(Jurisdiction.geom),
        joinedload(User.unit),
    )
)


def load_user(session: Session, user_id: int) -> User | None:
    return session.scalar(_LOAD_USER, {"user_id": user_id})


def load_user_by_name(session: Session, username: str) -> User | None:
    user_id = session.scalar(select(User.id).where(User.username == username.strip().lower()))
    return load_user(session, user_id) if user_id is not None else None


def revoke_refresh_tokens(
    session: Session,
    reason: str,
    now: datetime,
    *,
    user_id: int | None = None,
    family: str | None = None,
) -> None:
    """Revoke the live refresh tokens of one sign-in (`family`) or of every sign-in of a
    user (`user_id`)."""
    which = RefreshToken.family == family if family is not None else RefreshToken.user_id == user_id
    session.execute(
        update(RefreshToken)
        .where(which, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def set_password(
    user: User, password: str, settings: Settings, now: datetime, *, must_change: bool
) -> None:
    user.password_hash = hash_password(password, settings)
    user.password_changed_at = now
    user.password_must_change = must_change


def require_user_principal(session: Session, principal: Principal) -> User:
    if principal.kind != "user":
        raise Forbidden("接口密钥不能执行此操作")
    user = load_user(session, principal.id)
    if user is None or not user.is_active:
        raise AccountDisabled("该账号已停用或不存在")
    return user


# --- /me -----------------------------------------------------------------------------------


def jurisdiction_refs(
    rows: Iterable[UserJurisdiction | ApiKeyJurisdiction],
) -> list[JurisdictionRef]:
    return sorted(
        (JurisdictionRef.model_validate(r.jurisdiction) for r in rows),
        key=lambda j: j.code,
    )


def _segments_of(user_id: int) -> Select[str, str, str, RoadGrade, str, int]:
    # Columns, not entities: a level-2 chief owns hundreds of segments, and their
    # geometries are not needed here.
    return (
        select(
            RoadSegment.code,
            RoadSegment.name,
            RoadSegment.road_name,
            RoadSegment.grade,
            Jurisdiction.code.label("street_code"),
            SegmentChief.level,
        )
        .join(SegmentChief, SegmentChief.segment_id == RoadSegment.id)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .where(SegmentChief.user_id == user_id)
        .order_by(RoadSegment.code)
    )


def _chief_segments(session: Session, user_id: int) -> list[ChiefSegment]:
    rows = session.execute(_segments_of(user_id)).all()
    return [ChiefSegment.model_validate(row._asdict()) for row in rows]


def my_segments(
    session: Session, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[ChiefSegment], str | None]:
    """The caller's segments (a road chief's; nobody else owns any), a page at a time in
    code order: a level-2 chief owns hundreds."""
    query = _segments_of(principal.user_id or 0)
    rows, next_cursor = SEGMENTS_BY_CODE.rows(session, query, limit=limit, cursor=cursor)
    return [ChiefSegment.model_validate(row._asdict()) for row in rows], next_cursor


#: `GET /me` is asked at every start of the phone app: two statements built once, read
#: as rows (no ORM objects): the user with their unit and segment count, then the scope.
_ME_USER = (
    select(
        User.username,
        User.display_name,
        User.chief_level,
        User.password_must_change,
        User.is_active,
        Unit.code.label("unit_code"),
        Unit.name.label("unit_name"),
        select(func.count())
        .select_from(SegmentChief)
        .where(SegmentChief.user_id == User.id)
        .scalar_subquery()
        .label("segment_count"),
    )
    .outerjoin(Unit, Unit.id == User.unit_id)
    .where(User.id == bindparam("user_id"))
)
_ME_SCOPE = (
    select(Jurisdiction.code, Jurisdiction.name, Jurisdiction.level)
    .join(UserJurisdiction, UserJurisdiction.jurisdiction_id == Jurisdiction.id)
    .where(UserJurisdiction.user_id == bindparam("user_id"))
    .order_by(Jurisdiction.code)
)


def me(session: Session, principal: Principal) -> MeOut:
    """Who the caller is, what they may do, where, and (road chiefs) how many segments:
    compact, as the phone asks for it at every start."""
    permissions = sorted(principal.permissions)
    if principal.kind == "api_key":
        key = session.scalar(
            select(ApiKey)
            .where(ApiKey.id == principal.id)
            .options(selectinload(ApiKey.scope_rows).selectinload(ApiKeyJurisdiction.jurisdiction))
        )
        if key is None:
            raise NotFound("接口密钥不存在")
        return MeOut(
            kind="api_key",
            id=key.id,
            username=key.name,
            display_name=key.name,
            roles=[],
            permissions=permissions,
            chief_level=None,
            unit=None,
            jurisdictions=jurisdiction_refs(key.scope_rows),
            unrestricted=False,
            segment_count=0,
            password_must_change=False,
        )
    row = session.execute(_ME_USER, {"user_id": principal.id}).one_or_none()
    if row is None or not row.is_active:
        raise AccountDisabled("该账号已停用或不存在")
    scope = session.execute(_ME_SCOPE, {"user_id": principal.id})
    return MeOut(
        kind="user",
        id=principal.id,
        username=row.username,
        display_name=row.display_name,
        # The token's roles, like its permissions: the token-state check on every request
        # refuses a token issued before the user's roles changed.
        roles=sorted(principal.roles),
        permissions=permissions,
        chief_level=row.chief_level,
        unit=UnitRef(code=row.unit_code, name=row.unit_name) if row.unit_code else None,
        jurisdictions=[JurisdictionRef(code=j.code, name=j.name, level=j.level) for j in scope],
        unrestricted=principal.unrestricted,
        segment_count=row.segment_count if row.chief_level else 0,
        password_must_change=row.password_must_change,
    )


# --- users (admin) -------------------------------------------------------------------------


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        phone=user.phone,
        roles=user.roles,
        chief_level=user.chief_level,
        unit=UnitRef(code=user.unit.code, name=user.unit.name) if user.unit else None,
        jurisdictions=jurisdiction_refs(user.scope_rows),
        is_active=user.is_active,
        password_must_change=user.password_must_change,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def jurisdictions_by_code(
    session: Session, codes: Sequence[str], field: str
) -> tuple[list[Jurisdiction], list[FieldError]]:
    found = {
        j.code: j for j in session.scalars(select(Jurisdiction).where(Jurisdiction.code.in_(codes)))
    }
    errors = [
        FieldError(loc=[field, i], code="unknown_jurisdiction", message=f"辖区 {code} 不存在")
        for i, code in enumerate(codes)
        if code not in found
    ]
    return [found[c] for c in dict.fromkeys(codes) if c in found], errors


@dataclass
class _Account:
    """The fields that must agree with each other, after a create or an update."""

    roles: set[Role]
    chief_level: int | None
    unit: Unit | None
    jurisdictions: list[Jurisdiction]


def _account_errors(account: _Account) -> list[FieldError]:
    def err(field: str, code: str, message: str) -> FieldError:
        return FieldError(loc=[field], code=code, message=message)

    errors = []
    chief = Role.ROAD_CHIEF in account.roles
    if chief and account.chief_level is None:
        errors.append(err("chief_level", "chief_level_required", "路长须指定级别（1、2 或 3）"))
    if not chief and account.chief_level is not None:
        errors.append(err("chief_level", "chief_level_not_allowed", "只有路长有级别"))
    staff = Role.DEPARTMENT_STAFF in account.roles
    if staff and account.unit is None:
        errors.append(err("unit_code", "unit_required", "部门人员须指定所属部门或单位"))
    if not staff and account.unit is not None:
        errors.append(err("unit_code", "unit_not_allowed", "只有部门人员属于某个部门或单位"))
    if Role.ADMIN not in account.roles and not account.jurisdictions:
        errors.append(
            err(
                "jurisdiction_codes", "scope_required", "除管理员外，须指定至少一个辖区作为数据范围"
            )
        )
    return errors


def _unit_by_code(session: Session, code: str | None) -> tuple[Unit | None, list[FieldError]]:
    if code is None:
        return None, []
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        return None, [
            FieldError(loc=["unit_code"], code="unknown_unit", message=f"单位 {code} 不存在")
        ]
    return unit, []


def create_user(
    session: Session, settings: Settings, principal: Principal | None, data: UserCreate
) -> UserOut:
    """Create an account (admins; `principal=None` is the CLI acting as the system)."""
    if principal is not None:
        principal.require(Permission.USERS_MANAGE)
    username = data.username.lower()
    if session.scalar(select(exists().where(User.username == username))):
        raise UsernameTaken(f"用户名 {username} 已被使用")
    jurisdictions, errors = jurisdictions_by_code(
        session, data.jurisdiction_codes, "jurisdiction_codes"
    )
    unit, unit_errors = _unit_by_code(session, data.unit_code)
    account = _Account(set(data.roles), data.chief_level, unit, jurisdictions)
    errors += unit_errors + _account_errors(account)
    if errors:
        raise UserInvalid("请检查标出的字段", errors=errors)
    check_password_strength(data.password, username)
    now = utcnow()
    user = User(
        username=username,
        display_name=data.display_name,
        phone=data.phone,
        password_hash=hash_password(data.password, settings),
        password_changed_at=now,
        chief_level=data.chief_level,
        unit=unit,
        role_rows=[UserRole(role=r) for r in sorted(account.roles)],
        scope_rows=[UserJurisdiction(jurisdiction=j) for j in jurisdictions],
    )
    session.add(user)
    session.flush()
    record(
        session,
        AuditEventType.USER_CREATED,
        actor=principal,
        subject_user_id=user.id,
        roles=sorted(account.roles),
        scope=sorted(j.code for j in jurisdictions),
        via="api" if principal else "cli",
    )
    session.commit()
    return user_out(user)


def _visible_user(session: Session, principal: Principal, user_id: int) -> User:
    """The user, if the caller may see them; 404 otherwise (existence must not leak)."""
    user = load_user(session, user_id)
    if user is None or not sees_user(principal, user):
        raise NotFound("用户不存在")
    return user


def sees_user(principal: Principal, user: User) -> bool:
    """Whether the caller may see `user` (and what is theirs): a scope root of theirs is
    in the caller's sight; admins' accounts only by admins."""
    if principal.unrestricted:
        return True
    if Role.ADMIN in user.roles:
        return False
    return any(principal.sees_path(r.jurisdiction.path) for r in user.scope_rows)


def overseen_users(principal: Principal) -> ColumnElement[bool]:
    """The users whose personal data (GPS tracks, check-ins, the duty record) is in the
    caller's sight, as a filter on `User`: the caller themself, or a user (not an admin)
    every scope root of whom lies inside the caller's scope. Stricter than `sees_user`: a
    street's chief sees the district's chief as a colleague, not where they walked."""
    if principal.unrestricted:
        return true()
    own = User.id == principal.user_id if principal.user_id is not None else false()
    inside = or_(
        false(),
        *(Jurisdiction.path.startswith(root, autoescape=True) for root in principal.scope_paths),
    )
    roots = (
        select(UserJurisdiction.user_id)
        .join(Jurisdiction, UserJurisdiction.jurisdiction_id == Jurisdiction.id)
        .where(UserJurisdiction.user_id == User.id)
    )
    admin = exists().where(UserRole.user_id == User.id, UserRole.role == Role.ADMIN)
    return or_(own, and_(exists(roots), ~exists(roots.where(~inside)), ~admin))


def oversees_user(session: Session, principal: Principal, user_id: int) -> bool:
    """`overseen_users` for one user."""
    query = select(User.id).where(User.id == user_id, overseen_users(principal))
    return session.scalar(query) is not None


def user_by_username(session: Session, username: str) -> User:
    user = load_user_by_name(session, username)
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user


def get_user(session: Session, principal: Principal, user_id: int) -> UserOut:
    principal.require(Permission.USERS_READ)
    return user_out(_visible_user(session, principal, user_id))


def list_users(
    session: Session,
    principal: Principal,
    *,
    role: Role | None,
    unit_code: str | None,
    active: bool | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[UserOut], str | None]:
    principal.require(Permission.USERS_READ)
    query = select(User).options(
        selectinload(User.role_rows),
        selectinload(User.scope_rows).selectinload(UserJurisdiction.jurisdiction),
        selectinload(User.unit),
    )
    if not principal.unrestricted:
        query = query.where(
            exists()
            .where(UserJurisdiction.user_id == User.id)
            .where(UserJurisdiction.jurisdiction_id == Jurisdiction.id)
            .where(principal.path_filter(Jurisdiction.path)),
            ~exists().where(UserRole.user_id == User.id, UserRole.role == Role.ADMIN),
        )
    if role is not None:
        query = query.where(exists().where(UserRole.user_id == User.id, UserRole.role == role))
    if unit_code is not None:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit_code))
        if unit_id is None:  # else a misspelt code would answer "nobody works there"
            raise UnknownUnit(f"单位 {unit_code} 不存在", unit_code=unit_code)
        query = query.where(User.unit_id == unit_id)
    if active is not None:
        query = query.where(User.is_active == active)
    if q:
        like = f"%{q.strip()}%"
        query = query.where(User.username.like(like) | User.display_name.like(like))
    users, next_cursor = USERS_BY_ID.scalars(session, query, limit=limit, cursor=cursor)
    return [user_out(u) for u in users], next_cursor


def update_user(
    session: Session,
    settings: Settings,
    principal: Principal | None,
    user_id: int,
    data: UserUpdate,
) -> UserOut:
    """Change profile, roles, scope or status. Disabling revokes every refresh token;
    changing roles or scope is audited with the before and after.

    All checks come first (the account asked for must hold together, an admin may not lock
    themselves out), so refused input changes nothing; then each concern in turn."""
    if principal is not None:
        principal.require(Permission.USERS_MANAGE)
    user = load_user(session, user_id)
    if user is None:
        raise NotFound("用户不存在")
    wanted = _account_asked_for(session, user, data)
    _refuse_self_lock_out(principal, user, data, wanted.roles)

    now = utcnow()
    _update_profile(user, data)
    _change_roles(session, principal, user, wanted, now)
    _change_scope(session, principal, user, wanted.jurisdictions, now)
    _change_status(session, principal, user, data.is_active, now)
    session.commit()
    return user_out(user)  # expire_on_commit=False: the loaded state is current


def _account_asked_for(session: Session, user: User, data: UserUpdate) -> _Account:
    """The account as the update would leave it (each field sent, or as it is); refused
    with every field error at once when its parts do not agree."""
    sent = data.model_fields_set
    errors: list[FieldError] = []
    roles = set(data.roles) if "roles" in sent and data.roles is not None else set(user.roles)
    chief_level = data.chief_level if "chief_level" in sent else user.chief_level
    unit = user.unit
    if "unit_code" in sent:
        unit, unit_errors = _unit_by_code(session, data.unit_code)
        errors += unit_errors
    jurisdictions = [r.jurisdiction for r in user.scope_rows]
    if "jurisdiction_codes" in sent and data.jurisdiction_codes is not None:
        jurisdictions, j_errors = jurisdictions_by_code(
            session, data.jurisdiction_codes, "jurisdiction_codes"
        )
        errors += j_errors
    account = _Account(roles, chief_level, unit, jurisdictions)
    errors += _account_errors(account)
    if errors:
        raise UserInvalid("请检查标出的字段", errors=errors)
    return account


def _refuse_self_lock_out(
    principal: Principal | None, user: User, data: UserUpdate, roles: set[Role]
) -> None:
    """An admin may not disable themselves or drop their own admin role."""
    locks_out = data.is_active is False or (Role.ADMIN in user.roles and Role.ADMIN not in roles)
    if principal is not None and principal.user_id == user.id and locks_out:
        raise CannotLockOutSelf("请由另一位管理员操作，以免无人可以管理系统")


def _update_profile(user: User, data: UserUpdate) -> None:
    sent = data.model_fields_set
    if "display_name" in sent and data.display_name is not None:
        user.display_name = data.display_name
    if "phone" in sent:
        user.phone = data.phone


def _change_roles(
    session: Session, principal: Principal | None, user: User, wanted: _Account, now: datetime
) -> None:
    """Roles, chief level and unit change together: the access tokens end, the change is
    audited, and a new chief level unlinks the segments owned at the old one."""
    before_roles, before_level = sorted(user.roles), user.chief_level
    before_unit = user.unit.code if user.unit else None
    after_unit = wanted.unit.code if wanted.unit else None
    before = (set(before_roles), before_level, before_unit)
    if before == (wanted.roles, wanted.chief_level, after_unit):
        return
    user.role_rows = [UserRole(role=r) for r in sorted(wanted.roles)]
    user.chief_level = wanted.chief_level
    user.unit = wanted.unit
    end_access_tokens(user, now)
    if wanted.chief_level != before_level:
        # Segments were owned at the old level; an admin links them again.
        session.execute(_SEGMENT_CHIEFS.delete().where(SegmentChief.user_id == user.id))
    record(
        session,
        AuditEventType.ROLES_CHANGED,
        actor=principal,
        subject_user_id=user.id,
        before={"roles": before_roles, "chief_level": before_level, "unit": before_unit},
        after={
            "roles": sorted(wanted.roles),
            "chief_level": wanted.chief_level,
            "unit": after_unit,
        },
    )


def _change_scope(
    session: Session,
    principal: Principal | None,
    user: User,
    jurisdictions: list[Jurisdiction],
    now: datetime,
) -> None:
    """A new scope ends the access tokens, is audited, and drops the segments now outside."""
    before_scope = sorted(r.jurisdiction.code for r in user.scope_rows)
    after_scope = sorted(j.code for j in jurisdictions)
    if before_scope == after_scope:
        return
    user.scope_rows = [
        UserJurisdiction(jurisdiction_id=j.id, jurisdiction=j) for j in jurisdictions
    ]
    end_access_tokens(user, now)
    record(
        session,
        AuditEventType.SCOPE_CHANGED,
        actor=principal,
        subject_user_id=user.id,
        before=before_scope,
        after=after_scope,
    )
    _drop_segments_out_of_scope(session, principal, user)


def _change_status(
    session: Session,
    principal: Principal | None,
    user: User,
    is_active: bool | None,
    now: datetime,
) -> None:
    """Enabling or disabling, audited; disabling revokes every refresh token and ends the
    access tokens."""
    if is_active is None or is_active == user.is_active:
        return
    user.is_active = is_active
    if not is_active:
        revoke_refresh_tokens(session, "disabled", now, user_id=user.id)
        end_access_tokens(user, now)
    record(
        session,
        AuditEventType.USER_ENABLED if is_active else AuditEventType.USER_DISABLED,
        actor=principal,
        subject_user_id=user.id,
    )


def reset_password(
    session: Session,
    settings: Settings,
    principal: Principal | None,
    user_id: int,
    new_password: str,
) -> None:
    """An admin sets a new password; the user must change it at next sign-in and every
    refresh token dies."""
    if principal is not None:
        principal.require(Permission.USERS_MANAGE)
    user = load_user(session, user_id)
    if user is None:
        raise NotFound("用户不存在")
    check_password_strength(new_password, user.username)
    now = utcnow()
    set_password(user, new_password, settings, now, must_change=True)
    revoke_refresh_tokens(session, "password_reset", now, user_id=user.id)
    end_access_tokens(user, now)
    record(session, AuditEventType.PASSWORD_RESET, actor=principal, subject_user_id=user.id)
    session.commit()


def _owned_segments(session: Session, user_id: int) -> list[tuple[int, str, str]]:
    """(segment id, code, its street's path) of each segment the chief owns."""
    rows = session.execute(
        select(RoadSegment.id, RoadSegment.code, Jurisdiction.path)
        .join(SegmentChief, SegmentChief.segment_id == RoadSegment.id)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .where(SegmentChief.user_id == user_id)
        .order_by(RoadSegment.code)
    ).all()
    return [(r.id, r.code, r.path) for r in rows]


def _drop_segments_out_of_scope(session: Session, principal: Principal | None, user: User) -> None:
    """A chief moved to another area gives up the segments the new scope does not reach
    (the rule `set_chief_segments` assigns by); audited as a segment change."""
    chief = principal_for_user(user)
    owned = _owned_segments(session, user.id)
    dropped = [(sid, code) for sid, code, path in owned if not chief.sees_path(path)]
    if not dropped:
        return
    session.execute(
        _SEGMENT_CHIEFS.delete().where(
            SegmentChief.user_id == user.id,
            SegmentChief.segment_id.in_([sid for sid, _ in dropped]),
        )
    )
    gone = {code for _, code in dropped}
    record(
        session,
        AuditEventType.SEGMENTS_CHANGED,
        actor=principal,
        subject_user_id=user.id,
        level=user.chief_level,
        before=[code for _, code, _ in owned],
        after=[code for _, code, _ in owned if code not in gone],
        reason="scope_changed",
    )


def set_chief_segments(
    session: Session,
    principal: Principal | None,
    user_id: int,
    segment_codes: Sequence[str],
    *,
    reassign: bool = False,
) -> list[ChiefSegment]:
    """Make `segment_codes` exactly the segments this road chief owns at their level."""
    if principal is not None:
        principal.require(Permission.USERS_MANAGE)
    user = load_user(session, user_id)
    if user is None:
        raise NotFound("用户不存在")
    if Role.ROAD_CHIEF not in user.roles or user.chief_level is None:
        raise SegmentsInvalid("只有路长可以分配路段")
    level = user.chief_level
    codes = list(dict.fromkeys(segment_codes))
    rows = session.execute(
        select(RoadSegment, Jurisdiction.path)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .where(RoadSegment.code.in_(codes))
    ).all()
    found = {s.code: (s, path) for s, path in rows}
    chief = principal_for_user(user)
    errors = []
    for i, code in enumerate(codes):
        if code not in found:
            errors.append(
                FieldError(
                    loc=["segment_codes", i], code="unknown_segment", message=f"路段 {code} 不存在"
                )
            )
        elif not chief.sees_path(found[code][1]):
            errors.append(
                FieldError(
                    loc=["segment_codes", i],
                    code="segment_out_of_scope",
                    message=f"路段 {code} 不在该路长的辖区内",
                )
            )
    if errors:
        raise SegmentsInvalid("请检查标出的路段", errors=errors)
    segment_ids = [found[c][0].id for c in codes]
    taken = session.execute(
        select(SegmentChief, User.username)
        .join(User, SegmentChief.user_id == User.id)
        .where(
            SegmentChief.segment_id.in_(segment_ids),
            SegmentChief.level == level,
            SegmentChief.user_id != user.id,
        )
    ).all()
    if taken and not reassign:
        by_id = {s.id: s.code for s, _ in found.values()}
        raise SegmentsHaveChief(
            "部分路段已有同级路长；确认调整请设置 reassign=true",
            conflicts=[{"segment_code": by_id[c.segment_id], "chief": name} for c, name in taken],
        )
    before = [code for _, code, _ in _owned_segments(session, user.id)]
    table = _SEGMENT_CHIEFS
    session.execute(table.delete().where(SegmentChief.user_id == user.id))
    if segment_ids:
        session.execute(
            table.delete().where(
                SegmentChief.segment_id.in_(segment_ids), SegmentChief.level == level
            )
        )
    now = utcnow()
    if segment_ids:
        # Core statements on both sides: the rows replaced above may still sit in the
        # identity map, and ORM objects with the same keys would clash with them.
        session.execute(
            insert(SegmentChief),
            [
                {"segment_id": sid, "level": level, "user_id": user.id, "assigned_at": now}
                for sid in segment_ids
            ],
        )
    record(
        session,
        AuditEventType.SEGMENTS_CHANGED,
        actor=principal,
        subject_user_id=user.id,
        level=level,
        before=before,
        after=sorted(codes),
        taken_from=sorted({name for _, name in taken}),
    )
    session.commit()
    return _chief_segments(session, user.id)


def get_chief_segments(session: Session, principal: Principal, user_id: int) -> list[ChiefSegment]:
    principal.require(Permission.USERS_READ)
    user = _visible_user(session, principal, user_id)
    return _chief_segments(session, user.id)
