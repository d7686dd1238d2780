"""Accounts as the API speaks them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.access.rules import Permission
from app.accounts.models import Role
from app.core.inputs import Moment
from app.core.moments import LocalMoment
from app.territory.models import JurisdictionLevel, RoadGrade
from app.territory.schemas import Code

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,31}$"

Username = Field(
    pattern=USERNAME_PATTERN,
    description="3–32 characters: lower-case letters, digits, '_', '.', '-'.",
    examples=["wang.chief"],
)


class TokenPair(BaseModel):
    """OAuth2 token response (RFC 6749 §5.1) with the rotating refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token stays valid.")
    refresh_token: str = Field(description="Single use: each refresh returns a new one.")
    refresh_expires_in: int = Field(description="Seconds the refresh token stays valid.")


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=200)
    new_password: str = Field(max_length=200)


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_password: str = Field(max_length=200)


class JurisdictionRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # a Jurisdiction row as it is

    code: str
    name: str
    level: JurisdictionLevel


class UnitRef(BaseModel):
    code: str
    name: str


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "wang.chief",
                    "display_name": "王建国",
                    "password": "Jinhe#2026road",
                    "phone": "13800000000",
                    "roles": ["road_chief"],
                    "chief_level": 2,
                    "jurisdiction_codes": ["410199001"],
                }
            ]
        },
    )

    username: str = Username
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    roles: list[Role] = Field(min_length=1)
    chief_level: int | None = Field(default=None, ge=1, le=3)
    unit_code: Code | None = Field(default=None, description="Required for department_staff.")
    jurisdiction_codes: list[Code] = Field(
        default_factory=list, description="Roots of the user's scope (not needed for admins)."
    )


class UserUpdate(BaseModel):
    """Only the fields sent are changed; send null to clear chief_level or unit_code."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"roles": ["road_chief", "patroller"], "chief_level": 3}]},
    )

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    roles: list[Role] | None = Field(default=None, min_length=1)
    chief_level: int | None = Field(default=None, ge=1, le=3)
    unit_code: Code | None = None
    jurisdiction_codes: list[Code] | None = None
    is_active: bool | None = Field(
        default=None, description="false disables the account and revokes its refresh tokens."
    )


class SegmentAssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment_codes: list[Code] = Field(
        description="The complete list of segments this chief owns at their level."
    )
    reassign: bool = Field(
        default=False,
        description="Take segments that have another chief of the same level (else 409).",
    )


class ChiefSegment(BaseModel):
    code: str
    name: str
    road_name: str
    grade: RoadGrade
    street_code: str
    level: int = Field(description="The chief's level on this segment (1, 2 or 3).")


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    phone: str | None
    roles: list[Role]
    chief_level: int | None
    unit: UnitRef | None
    jurisdictions: list[JurisdictionRef]
    is_active: bool
    password_must_change: bool
    created_at: LocalMoment
    updated_at: LocalMoment


class MeOut(BaseModel):
    """What the phone app needs after sign-in."""

    kind: Literal["user", "api_key"]
    id: int
    username: str = Field(description="The user's name, or the API key's name.")
    display_name: str
    roles: list[Role]
    permissions: list[Permission]
    chief_level: int | None
    unit: UnitRef | None
    jurisdictions: list[JurisdictionRef] = Field(description="The roots of the caller's scope.")
    unrestricted: bool = Field(description="Sees every jurisdiction (admins).")
    segment_count: int = Field(
        description="Road segments this road chief owns; the list is paged at "
        "`GET /api/v1/me/segments` (a level-2 chief owns hundreds)."
    )
    password_must_change: bool


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "第三方考核公司夜间同步", "jurisdiction_codes": ["410199"]}]
        },
    )
    name: str = Field(min_length=1, max_length=100)
    jurisdiction_codes: list[Code] = Field(min_length=1)
    expires_at: Moment | None = None
    access: Literal["read", "open311"] = Field(
        default="read",
        description="`read`: read-only. `open311`: may also submit requests and updates "
        "through Open311 (`/open311/v2/`), in its jurisdictions, and nothing else.",
    )


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The key's public part, to recognise it in lists.")
    access: Literal["read", "open311"] = "read"
    jurisdictions: list[JurisdictionRef]
    created_at: LocalMoment
    expires_at: LocalMoment | None
    last_used_at: LocalMoment | None
    revoked_at: LocalMoment | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown this once; only its hash is stored.")
