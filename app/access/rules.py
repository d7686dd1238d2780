"""Authorization: the one place that knows what a caller may do and see (权限与数据范围),
and the roles it is granted by (角色). Below every domain but `core`: territory, which the
accounts build on, asks it too.

Every service that lists, reads or changes something takes the caller's `Principal` and
asks it here: `require` for a permission, `path_filter`/`sees_path` for the scope. Routers
only obtain the principal; they never decide.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, or_, true

from app.core.errors import NotFound, Problem


class Role(StrEnum):
    """What a user does in the road-chief system."""

    ROAD_CHIEF = "road_chief"  # 路长 (level 1, 2 or 3)
    PATROLLER = "patroller"  # 巡查员
    SUPERVISOR = "supervisor"  # 监督员
    DISPATCHER = "dispatcher"  # 指挥中心派遣员
    DEPARTMENT_STAFF = "department_staff"  # 职能部门/权属单位人员
    ASSESSOR = "assessor"  # 第三方考核人员
    ADMIN = "admin"  # 系统管理员


class Permission(StrEnum):
    TERRITORY_READ = "territory:read"
    TERRITORY_MANAGE = "territory:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    API_KEYS_MANAGE = "api_keys:manage"
    AUDIT_READ = "audit:read"
    ROUTING_READ = "routing:read"
    ROUTING_MANAGE = "routing:manage"
    WHISTLES_READ = "whistles:read"
    WHISTLES_BLOW = "whistles:blow"
    WHISTLES_REPORT_IN = "whistles:report_in"
    PHOTOS_UPLOAD = "photos:upload"
    REPORTS_SUBMIT = "reports:submit"
    CASES_READ = "cases:read"
    #: The workflow's actors (`app.cases.workflow.ACTOR_PERMISSIONS`): register, dispatch,
    #: decide returns and extensions, hang up (the command centre).
    CASES_DISPATCH = "cases:dispatch"
    #: Sign for, handle, feed back, ask to return or for more time (a unit's staff, on
    #: their unit's tasks).
    CASES_HANDLE = "cases:handle"
    #: Verify and reopen (the reporter, the segment's road chiefs, supervisors: checked per case).
    CASES_VERIFY = "cases:verify"
    #: Urge an unfinished case (督办).
    CASES_SUPERVISE = "cases:supervise"
    CASES_CANCEL = "cases:cancel"
    WEBHOOKS_MANAGE = "webhooks:manage"
    CALENDAR_MANAGE = "calendar:manage"
    PATROLS_READ = "patrols:read"
    PATROLS_RECORD = "patrols:record"
    INSPECTIONS_RECORD = "inspections:record"
    ASSESSMENT_MANAGE = "assessment:manage"
    #: Submit requests and updates through Open311 only (an API key's grant, never a role's).
    OPEN311_SUBMIT = "open311:submit"
    #: Import cases from the city's 数字城管 platform (the command centre, admins).
    EXCHANGE_IMPORT = "exchange:import"


#: What each role may do. Scope (which jurisdictions) is separate and applies on top.
_READ_ALL = frozenset(
    {
        Permission.TERRITORY_READ,
        Permission.ROUTING_READ,
        Permission.WHISTLES_READ,
        Permission.CASES_READ,
        Permission.PATROLS_READ,
    }
)
_REPORT = frozenset(
    {Permission.PHOTOS_UPLOAD, Permission.REPORTS_SUBMIT, Permission.PATROLS_RECORD}
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ROAD_CHIEF: _READ_ALL | _REPORT | {Permission.WHISTLES_BLOW, Permission.CASES_VERIFY},
    Role.PATROLLER: _READ_ALL | _REPORT | {Permission.CASES_VERIFY},
    Role.SUPERVISOR: _READ_ALL | _REPORT | {Permission.CASES_VERIFY, Permission.CASES_SUPERVISE},
    Role.DISPATCHER: _READ_ALL
    | {Permission.USERS_READ, Permission.EXCHANGE_IMPORT, Permission.CASES_DISPATCH},
    Role.DEPARTMENT_STAFF: _READ_ALL
    | {Permission.WHISTLES_REPORT_IN, Permission.PHOTOS_UPLOAD, Permission.CASES_HANDLE},
    Role.ASSESSOR: _READ_ALL
    | {Permission.USERS_READ, Permission.PHOTOS_UPLOAD, Permission.INSPECTIONS_RECORD},
    Role.ADMIN: frozenset(Permission),
}

#: The most a read-only principal (an API key) can ever hold.
READ_PERMISSIONS = _READ_ALL | {Permission.USERS_READ}

#: Roles whose holders see every jurisdiction whatever their scope rows say.
UNRESTRICTED_ROLES = frozenset({Role.ADMIN})


_CHALLENGE = {"WWW-Authenticate": "Bearer challenge (RFC 6750), on a bearer token's refusal."}


class NotAuthenticated(Problem):
    code = "not_authenticated"
    status = 401
    title = "未登录或凭据无效"
    answer_headers = _CHALLENGE


class TokenExpired(Problem):
    code = "token_expired"
    status = 401
    title = "登录已过期"
    answer_headers = _CHALLENGE


class TokenInvalid(Problem):
    code = "token_invalid"
    status = 401
    title = "令牌无效"
    answer_headers = _CHALLENGE


class AccountDisabled(Problem):
    code = "account_disabled"
    status = 401
    title = "账号已停用"
    answer_headers = _CHALLENGE


class ApiKeyInvalid(Problem):
    code = "api_key_invalid"
    status = 401
    title = "接口密钥无效"


class Forbidden(Problem):
    code = "forbidden"
    status = 403
    title = "无权执行此操作"


#: Problems any route that asks who is calling may answer with (the app documents them on
#: each such route: `app.core.contract`).
AUTH_PROBLEMS: tuple[type[Problem], ...] = (
    NotAuthenticated,
    TokenExpired,
    TokenInvalid,
    AccountDisabled,
    ApiKeyInvalid,
    Forbidden,
)


def bearer_challenge(error: str | None = None) -> dict[str, str]:
    """The WWW-Authenticate header of a 401 (RFC 6750)."""
    value = 'Bearer realm="roadchief"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def ancestors(path: str) -> set[str]:
    """The proper ancestors of a jurisdiction path: "/a/b/c/" -> {"/a/", "/a/b/"}."""
    parts = [p for p in path.split("/") if p]
    return {"/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user or an API key, with roles and scope.

    `SYSTEM` is the service itself (the CLI, the demo loader, benchmarks).
    """

    kind: Literal["user", "api_key", "system"]
    id: int
    name: str
    roles: frozenset[Role] = frozenset()
    #: Jurisdiction paths ("/410199/410199001/"), each the root of a visible subtree.
    scope_paths: tuple[str, ...] = ()
    chief_level: int | None = None
    unit_code: str | None = None
    read_only: bool = False
    #: Granted on top of the roles, past the read-only cap (an Open311 key's submit right).
    grants: frozenset[Permission] = frozenset()
    permissions: frozenset[Permission] = field(init=False)

    def __post_init__(self) -> None:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS[role]
        if self.read_only:
            granted = (granted or set(READ_PERMISSIONS)) & READ_PERMISSIONS
        granted |= self.grants
        object.__setattr__(self, "permissions", frozenset(granted))

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == "user" else None

    @property
    def ref(self) -> str:
        """Who this is, as one string ("user:12"): keys per-caller records."""
        return f"{self.kind}:{self.id}"

    @property
    def api_key_id(self) -> int | None:
        return self.id if self.kind == "api_key" else None

    @property
    def unrestricted(self) -> bool:
        """Sees every jurisdiction (admins)."""
        return bool(self.roles & UNRESTRICTED_ROLES)

    def require(self, permission: Permission) -> None:
        """Raise 403 unless the principal holds the permission."""
        if permission not in self.permissions:
            raise Forbidden(f"当前账号没有“{permission.value}”权限", permission=permission.value)

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))

    # --- scope ---------------------------------------------------------------------------

    def sees_path(self, path: str | None) -> bool:
        """Whether a thing attached to the jurisdiction at `path` is visible.

        Visible: anything inside a scope root, and the scope roots' ancestors (a street's
        chief sees the district outline and the district's departments). `None` means
        attached to no jurisdiction (district-wide): visible to everyone.
        """
        if path is None or self.unrestricted:
            return True
        return any(path.startswith(root) for root in self.scope_paths) or path in self._ancestors()

    def contains_path(self, path: str) -> bool:
        """Whether the jurisdiction at `path` lies inside one of the caller's scope roots
        (ancestors excluded): the test for what belongs to a person, see `oversees_user`."""
        return self.unrestricted or any(path.startswith(root) for root in self.scope_paths)

    def path_filter(self, column: Any, *, nullable: bool = False) -> ColumnElement[bool]:
        """The SQL form of `sees_path` on a column holding jurisdiction paths."""
        if self.unrestricted:
            return true()
        clauses: list[ColumnElement[bool]] = [
            column.startswith(root, autoescape=True) for root in self.scope_paths
        ]
        if up := self._ancestors():
            clauses.append(column.in_(sorted(up)))
        if nullable:
            clauses.append(column.is_(None))
        return or_(*clauses) if clauses else false()

    def _ancestors(self) -> set[str]:
        up: set[str] = set()
        for root in self.scope_paths:
            up |= ancestors(root)
        return up

    def require_path(self, path: str | None, what: str = "对象") -> None:
        """404 for anything outside the scope: its existence must not leak."""
        if not self.sees_path(path):
            raise NotFound(f"{what}不存在")

    def require_unit(self, unit_code: str) -> None:
        """403 unless the caller is staff of `unit_code` (or an admin)."""
        if self.unrestricted:
            return
        if self.has_role(Role.DEPARTMENT_STAFF) and self.unit_code == unit_code:
            return
        raise Forbidden("只能处理本部门（单位）的工作", unit=unit_code)


class SignedIn(Principal):
    """A caller who is a signed-in person (登录用户), not an API key or the service itself:
    what owns a patrol, a check-in, a shop visit, an inspection or an inbox."""

    __slots__ = ()

    @property
    def user_id(self) -> int:  # narrower than Principal's: never None
        return self.id

    @classmethod
    def of(cls, principal: Principal) -> SignedIn:
        """The principal as a signed-in person, or 403 for an API key or the service."""
        if principal.kind != "user":
            raise Forbidden("此操作只能由登录的用户执行，接口密钥不能执行")
        fields = {
            f.name: getattr(principal, f.name) for f in dataclasses.fields(principal) if f.init
        }
        return cls(**fields)


#: The service acting by itself: sees and may do everything; audited as no one.
SYSTEM = Principal(kind="system", id=0, name="system", roles=frozenset({Role.ADMIN}))


def missing_credentials() -> NotAuthenticated:
    return NotAuthenticated(
        "请先登录（Authorization: Bearer 访问令牌）或提供接口密钥（X-API-Key）",
        headers=bearer_challenge(),
    )
