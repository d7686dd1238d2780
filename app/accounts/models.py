"""Users, their roles and scope, refresh tokens, API keys and login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.access.rules import Role
from app.core.database import Base, TimestampMixin, UTCDateTime, str_enum, utcnow
from app.territory.models import Jurisdiction, RoadSegment, Unit


class User(TimestampMixin, Base):
    """A person who signs in (用户)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("chief_level IS NULL OR chief_level BETWEEN 1 AND 3", name="chief_level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Set by an admin's reset: the app asks the user to choose a new password.
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Access tokens issued before this instant are refused: set when the account is
    #: disabled, its roles, level, unit or scope change, or its password changes.
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: 一级/二级/三级路长; only for road chiefs.
    chief_level: Mapped[int | None] = mapped_column(Integer)
    #: The department or unit a department_staff user works for.
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )

    unit: Mapped[Unit | None] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", order_by="UserRole.role"
    )
    scope_rows: Mapped[list[UserJurisdiction]] = relationship(cascade="all, delete-orphan")

    @property
    def roles(self) -> list[Role]:
        return sorted(r.role for r in self.role_rows)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role), primary_key=True)


class UserJurisdiction(Base):
    """One root of a user's scope: the jurisdiction and everything under it."""

    __tablename__ = "user_jurisdictions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    jurisdiction_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), primary_key=True, index=True
    )

    jurisdiction: Mapped[Jurisdiction] = relationship()


class SegmentChief(Base):
    """The road chief of one level for one road segment (路段路长)."""

    __tablename__ = "segment_chiefs"
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 3", name="level"),)

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("road_segments.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    segment: Mapped[RoadSegment] = relationship()


class RefreshToken(Base):
    """One refresh token (stored as a hash). Tokens rotated from one sign-in form a family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When it was exchanged for its successor (rotation).
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaced_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("refresh_tokens.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class ApiKey(TimestampMixin, Base):
    """A key for a machine client (接口密钥), scoped to jurisdiction subtrees: read-only, or
    (`access` "open311") also allowed to submit requests through Open311 and nothing else."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The public part of the key, to find it without scanning hashes.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    access: Mapped[str] = mapped_column(String(16), default="read", server_default="read")

    scope_rows: Mapped[list[ApiKeyJurisdiction]] = relationship(cascade="all, delete-orphan")


class ApiKeyJurisdiction(Base):
    __tablename__ = "api_key_jurisdictions"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    jurisdiction_id: Mapped[int] = mapped_column(
        ForeignKey("jurisdictions.id", ondelete="RESTRICT"), primary_key=True, index=True
    )

    jurisdiction: Mapped[Jurisdiction] = relationship()


class LoginThrottle(Base):
    """Recent failed password checks for one account name, one client address, or one
    account from one address; for the last, also when that account last signed in there."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "account:<username>", "address:<ip>" or "pair:<ip>|<username>".
    key: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Pairs only: the last successful sign-in of the account from the address.
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SigningKey(Base):
    """The key that signs access tokens (令牌签名密钥) when ROADCHIEF_SECRET_KEY is unset:
    one row, kept in the database so that every server of a deployment shares it. The
    first server to start writes it (its fixed id makes two first servers agree)."""

    __tablename__ = "signing_keys"
    __table_args__ = (CheckConstraint("id = 1", name="one_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
