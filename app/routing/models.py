"""Routing tables: the problem taxonomy, versioned rule sets and the decisions they made."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, TimestampMixin, UTCDateTime, str_enum, utcnow


class Urgency(StrEnum):
    """紧急程度: 特急 / 紧急 / 一般."""

    CRITICAL = "critical"
    URGENT = "urgent"
    NORMAL = "normal"


class Category(TimestampMixin, Base):
    """A problem category (问题类别) of the taxonomy tree: a group or a leaf.

    Reports and cases name leaves. `path` is the chain of codes from the root
    ("/roads/roads.manhole/"), so a group's leaves are one prefix match. Categories are
    never deleted: one left out of a new taxonomy becomes inactive, and old cases keep it.
    """

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(String(400), index=True)
    is_group: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    default_urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency))
    photo_required: Mapped[bool] = mapped_column(Boolean)
    #: {urgency: {"sign_for": h, "handle": h, "verify": h}} in working hours, resolved.
    time_limits: Mapped[dict[str, dict[str, float]]] = mapped_column(JSON)
    #: Asset types (部件) whose owner takes the lead on this category.
    asset_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: National classification: {"kind", "major", "minor", "major_code", "minor_code"}.
    national: Mapped[dict[str, str] | None] = mapped_column(JSON)
    #: Work items of the plans this category comes from ("H1", "D7").
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Category | None] = relationship(remote_side=[id])


class RuleSetStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


class RuleSet(Base):
    """One uploaded version of a deployment's routing table (分拨规则).

    The document is kept as uploaded (after validation) and never changed; at most one
    version is active (a partial unique index guards it against two admins at once).
    """

    __tablename__ = "routing_rule_sets"
    __table_args__ = (
        Index(
            "uq_routing_rule_sets_one_active",
            "status",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[RuleSetStatus] = mapped_column(str_enum(RuleSetStatus))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    document_sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uploaded_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RuleSetActivation(Base):
    """One switch of the active rule set: the history that `rollback` walks back."""

    __tablename__ = "routing_rule_set_activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(
        ForeignKey("routing_rule_sets.id", ondelete="RESTRICT"), index=True
    )
    previous_rule_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rule_sets.id", ondelete="RESTRICT")
    )
    rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class DecisionBasis(StrEnum):
    """Why these units: a table rule, the asset's owner, or nothing matched."""

    RULE = "rule"
    ASSET_OWNER = "asset_owner"
    FALLBACK = "fallback"


class RoutingDecision(Base):
    """Who must act on one reported problem, and the facts and rule that said so.

    Stored with the case it routes; it names its rule-set version, so activating a new
    version never changes what an old decision says.
    """

    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    rule_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rule_sets.id", ondelete="RESTRICT"), index=True
    )
    category_code: Mapped[str] = mapped_column(String(64))
    #: Jurisdiction path of the point's deepest place, for scoped reads.
    jurisdiction_path: Mapped[str] = mapped_column(String(400), index=True)
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))
    basis: Mapped[DecisionBasis] = mapped_column(str_enum(DecisionBasis))
    matched_rule_id: Mapped[str | None] = mapped_column(String(64))
    lead_unit_codes: Mapped[list[str]] = mapped_column(JSON)
    cooperating_unit_codes: Mapped[list[str]] = mapped_column(JSON)
    territorial_unit_code: Mapped[str | None] = mapped_column(String(64))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[list[str]] = mapped_column(JSON)

    rule_set: Mapped[RuleSet | None] = relationship()
