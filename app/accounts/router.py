"""Sign-in, `/me`, and the admin API for users and API keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, Query, Response, status

from app.access.deps import ClientAddressDep, PrincipalDep
from app.access.rules import (
    AUTH_PROBLEMS,
    AccountDisabled,
)
from app.accounts import api_keys, service, signin
from app.accounts.models import Role
from app.accounts.passwords import WeakPassword
from app.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ChiefSegment,
    MeOut,
    PasswordChangeIn,
    PasswordResetIn,
    RefreshIn,
    SegmentAssignmentIn,
    TokenPair,
    UserCreate,
    UserOut,
    UserUpdate,
)
from app.accounts.throttle import LoginLocked, LoginThrottled
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, Problem, problem_responses
from app.core.inputs import DatabaseId
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, InvalidCursor, Page, PageSize
from app.core.routes import api_router
from app.territory.service import UnknownUnit

auth_router = api_router(prefix="/api/v1/auth", tags=["auth"])
me_router = api_router(prefix="/api/v1/me", tags=["auth"])
users_router = api_router(prefix="/api/v1/admin/users", tags=["admin: users"])
api_keys_router = api_router(prefix="/api/v1/admin/api-keys", tags=["admin: API keys"])


class UnsupportedGrantType(Problem):
    code = "unsupported_grant_type"
    status = 400
    title = "不支持的授权类型"


@auth_router.post(
    "/token",
    summary="Sign in (password grant) or refresh (refresh_token grant): OAuth2 token endpoint",
    response_model=TokenPair,
    responses=problem_responses(
        signin.InvalidCredentials,
        (AccountDisabled, signin.INVALID_GRANT_STATUS),
        signin.RefreshTokenInvalid,
        signin.RefreshTokenExpired,
        signin.RefreshTokenReused,
        LoginThrottled,
        LoginLocked,
        UnsupportedGrantType,
    ),
)
def token(
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    grant_type: Annotated[
        Literal["password", "refresh_token"],
        Form(description="`password` to sign in, `refresh_token` to rotate."),
    ],
    username: Annotated[str | None, Form(max_length=100, examples=["demo-chief-2"])] = None,
    password: Annotated[str | None, Form(max_length=200, examples=["Jinhe@2026"])] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str, Form(description="Ignored: scope comes from the account.")] = "",
) -> TokenPair:
    """Form-encoded as OAuth2 requires (RFC 6749 §4.3, §6). Refresh tokens are single
    use: keep the new one from each answer. A refused grant (a wrong password, a disabled
    account, a refresh token unknown, expired, revoked or reused) is `400` with
    `error: invalid_grant` and `error_description` (RFC 6749 §5.2) beside the problem's
    stable `code`."""
    if grant_type == "password":
        if not username or password is None:
            raise UnsupportedGrantType(
                "password 授权须提供 username 和 password", error="invalid_request"
            )
        return signin.login(session, settings, username, password, address)
    if not refresh_token:
        raise UnsupportedGrantType(
            "refresh_token 授权须提供 refresh_token", error="invalid_request"
        )
    return signin.refresh(session, settings, refresh_token, address)


@auth_router.post(
    "/logout",
    summary="Sign this device out: revoke its refresh token and every token rotated from it",
    status_code=status.HTTP_204_NO_CONTENT,
)
def logout(session: SessionDep, address: ClientAddressDep, body: RefreshIn) -> Response:
    signin.logout(session, body.refresh_token, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.get(
    "",
    summary="Who am I: roles, permissions, scope and (road chiefs) how many segments",
    response_model=MeOut,
    responses=problem_responses(*AUTH_PROBLEMS),
)
def get_me(session: SessionDep, principal: PrincipalDep) -> MeOut:
    return service.me(session, principal)


@me_router.get(
    "/segments",
    summary="My road segments (a road chief's), a page at a time in code order",
    response_model=Page[ChiefSegment],
    responses=problem_responses(*AUTH_PROBLEMS, InvalidCursor),
)
def list_my_segments(
    session: SessionDep, principal: PrincipalDep, limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> dict[str, object]:  # fmt: skip
    items, next_cursor = service.my_segments(session, principal, limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


@me_router.post(
    "/password",
    summary="Change my password (every other sign-in ends; this one gets new tokens)",
    response_model=TokenPair,
    responses=problem_responses(
        *AUTH_PROBLEMS,
        signin.CurrentPasswordIncorrect,
        WeakPassword,
        LoginThrottled,
        LoginLocked,
    ),
)
def change_my_password(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    address: ClientAddressDep,
    body: PasswordChangeIn,
) -> TokenPair:
    return signin.change_own_password(
        session, settings, principal, body.current_password, body.new_password, address
    )


# --- admin: users --------------------------------------------------------------------------

_USER_PROBLEMS = problem_responses(*AUTH_PROBLEMS, NotFound, service.UserInvalid)


@users_router.post(
    "",
    summary="Create a user",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(
        *AUTH_PROBLEMS, service.UsernameTaken, service.UserInvalid, WeakPassword
    ),
)
def create_user(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, body: UserCreate
) -> UserOut:
    return service.create_user(session, settings, principal, body)


@users_router.get(
    "",
    summary="List users in my scope",
    response_model=Page[UserOut],
    responses=problem_responses(*AUTH_PROBLEMS, UnknownUnit),
)
def list_users(
    session: SessionDep,
    principal: PrincipalDep,
    role: Role | None = None,
    unit: Annotated[
        str | None, Query(max_length=64, description="A unit's code: its staff.")
    ] = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=50, description="Part of username or name")] = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> dict[str, object]:
    items, next_cursor = service.list_users(
        session, principal, role=role, unit_code=unit, active=active, q=q, limit=limit,
        cursor=cursor,
    )  # fmt: skip
    return {"items": items, "next_cursor": next_cursor}


@users_router.get(
    "/{user_id}", summary="Read a user", response_model=UserOut, responses=_USER_PROBLEMS
)
def get_user(session: SessionDep, principal: PrincipalDep, user_id: DatabaseId) -> UserOut:
    return service.get_user(session, principal, user_id)


@users_router.patch(
    "/{user_id}",
    summary="Change a user's profile, roles, scope or status (is_active=false disables)",
    response_model=UserOut,
    responses=problem_responses(
        *AUTH_PROBLEMS, NotFound, service.UserInvalid, service.CannotLockOutSelf
    ),
)
def update_user(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    user_id: DatabaseId,
    body: UserUpdate,
) -> UserOut:
    return service.update_user(session, settings, principal, user_id, body)


@users_router.post(
    "/{user_id}/password",
    summary="Reset a user's password (they must change it at next sign-in)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH_PROBLEMS, NotFound, WeakPassword),
)
def reset_password(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    user_id: DatabaseId,
    body: PasswordResetIn,
) -> Response:
    service.reset_password(session, settings, principal, user_id, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.get(
    "/{user_id}/segments",
    summary="The road segments a road chief owns",
    response_model=list[ChiefSegment],
    responses=_USER_PROBLEMS,
)
def get_segments(
    session: SessionDep, principal: PrincipalDep, user_id: DatabaseId
) -> list[ChiefSegment]:
    return service.get_chief_segments(session, principal, user_id)


@users_router.put(
    "/{user_id}/segments",
    summary="Set the road segments a road chief owns at their level",
    response_model=list[ChiefSegment],
    responses=problem_responses(
        *AUTH_PROBLEMS, NotFound, service.SegmentsInvalid, service.SegmentsHaveChief
    ),
)
def set_segments(
    session: SessionDep, principal: PrincipalDep, user_id: DatabaseId, body: SegmentAssignmentIn
) -> list[ChiefSegment]:
    return service.set_chief_segments(
        session, principal, user_id, body.segment_codes, reassign=body.reassign
    )


# --- admin: API keys -----------------------------------------------------------------------


@api_keys_router.post(
    "",
    summary="Create a read-only API key (the key is shown only in this answer)",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(*AUTH_PROBLEMS, api_keys.ApiKeyScopeInvalid),
)
def create_api_key(
    session: SessionDep, principal: PrincipalDep, body: ApiKeyCreate
) -> ApiKeyCreated:
    return api_keys.create_api_key(session, principal, body)


@api_keys_router.get(
    "",
    summary="List API keys (never the keys themselves)",
    response_model=list[ApiKeyOut],
    responses=problem_responses(*AUTH_PROBLEMS),
)
def list_api_keys(session: SessionDep, principal: PrincipalDep) -> list[ApiKeyOut]:
    return api_keys.list_api_keys(session, principal)


@api_keys_router.delete(
    "/{key_id}",
    summary="Revoke an API key",
    response_model=ApiKeyOut,
    responses=problem_responses(*AUTH_PROBLEMS, NotFound),
)
def revoke_api_key(session: SessionDep, principal: PrincipalDep, key_id: DatabaseId) -> ApiKeyOut:
    return api_keys.revoke_api_key(session, principal, key_id)
