"""Cases and their append-only history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, TimestampMixin, UTCDateTime, str_enum, utcnow
from app.routing.models import Urgency


class CaseStatus(StrEnum):
    """Where a case stands in the closed loop (数字化城管七步闭环)."""

    PENDING_REGISTRATION = "pending_registration"  # 待立案: reported, awaiting the centre
    REGISTERED = "registered"  # 已立案: awaiting dispatch
    DISPATCHED = "dispatched"  # 已派遣: awaiting the lead unit's sign-for
    IN_PROGRESS = "in_progress"  # 处置中: the lead unit signed for it
    AWAITING_VERIFICATION = "awaiting_verification"  # 待核查: handled, or fixed on the spot
    CLOSED = "closed"  # 已结案
    REJECTED = "rejected"  # 不予立案
    CANCELLED = "cancelled"  # 已撤销


#: A case in one of these is finished: a new report of the problem starts a new case.
FINISHED_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.CANCELLED})


class CaseSource(StrEnum):
    REPORT = "report"  # a road chief's, patroller's or supervisor's report
    WHISTLE = "whistle"
    INSPECTION = "inspection"


class Case(TimestampMixin, Base):
    """A problem the closed loop tracks until it is verified and closed (案件)."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_category_code_status", "category_code", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[CaseStatus] = mapped_column(str_enum(CaseStatus), index=True)
    source: Mapped[CaseSource] = mapped_column(str_enum(CaseSource))
    category_code: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency))
    description: Mapped[str] = mapped_column(Text)
    reporter_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))
    #: Jurisdiction path of the deepest place holding the point, for scoped reads.
    jurisdiction_path: Mapped[str] = mapped_column(String(400), index=True)
    street_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    grid_cell_code: Mapped[str | None] = mapped_column(String(32))
    segment_code: Mapped[str | None] = mapped_column(String(32), index=True)
    routing_decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_decisions.id", ondelete="RESTRICT")
    )
    #: Handling deadline (处置时限), counted in working hours from the report.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fixed_on_spot: Mapped[bool] = mapped_column(Boolean, default=False)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Optimistic lock: every change raises it (SQLAlchemy checks it on UPDATE).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class TaskStatus(StrEnum):
    """One unit's part of a case."""

    PENDING = "pending"  # 待签收
    SIGNED = "signed"  # 处置中
    DONE = "done"  # 已反馈
    RELEASED = "released"  # 已释放 (a cooperating unit no longer needed)


class CaseTask(Base):
    """A unit's task on a case: the lead unit's (牵头) or a cooperating unit's (协办)."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "unit_id"),
        Index("ix_case_tasks_unit_id_status_handle_due_at", "unit_id", "status", "handle_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    is_lead: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sign_for_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handle_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class CaseEventKind(StrEnum):
    REPORTED = "reported"  # 上报
    DUPLICATE_REPORTED = "duplicate_reported"  # 重复上报（并案）
    FIXED_ON_SPOT = "fixed_on_spot"  # 当场整改
    REGISTERED = "registered"  # 立案
    REJECTED = "rejected"  # 不予立案
    DISPATCHED = "dispatched"  # 派遣
    SIGNED_FOR = "signed_for"  # 签收
    FED_BACK = "fed_back"  # 处置反馈
    VERIFIED = "verified"  # 核查通过
    REWORK = "rework"  # 核查不通过，返工
    RELEASED = "released"  # 释放协办单位
    URGED = "urged"  # 督办
    CANCELLED = "cancelled"  # 撤销


class CaseEvent(Base):
    """One step of a case (案件流转记录): who, when, where, what, with which photos.

    Never updated or deleted: the history is the evidence assessors read.
    """

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[CaseEventKind] = mapped_column(str_enum(CaseEventKind))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    from_status: Mapped[CaseStatus | None] = mapped_column(str_enum(CaseStatus))
    to_status: Mapped[CaseStatus | None] = mapped_column(str_enum(CaseStatus))
    note: Mapped[str | None] = mapped_column(Text)
    photo_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    geom: Mapped[WKBElement | None] = mapped_column(Geometry("POINT", srid=4326))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
