"""Cases and their append-only history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import to_shape
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
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
    HUNG_UP = "hung_up"  # 挂账: a long case set aside, its deadlines paused
    CLOSED = "closed"  # 已结案
    REJECTED = "rejected"  # 不予立案
    CANCELLED = "cancelled"  # 已撤销


#: A case in one of these is finished: a new report of the problem starts a new case.
FINISHED_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.CANCELLED})
#: Units are at work on the case: their tasks can be acted on and their deadlines run.
HANDLING_STATUSES = frozenset({CaseStatus.DISPATCHED, CaseStatus.IN_PROGRESS})


class CaseStage(StrEnum):
    """The step a case waits for; `stage_due_at` is that step's deadline, if it has one."""

    REGISTER = "register"  # 待立案: the centre registers or rejects it (no time limit)
    DISPATCH = "dispatch"  # 待派遣: the centre dispatches it (no time limit)
    HANDLE = "handle"  # 处置: the units sign for and handle it, by the handling deadline
    VERIFY = "verify"  # 核查: the verifier checks it on site, by the verification deadline
    RESUME = "resume"  # 挂账: set aside, its deadlines paused until the centre resumes it


STAGE_OF_STATUS: dict[CaseStatus, CaseStage] = {
    CaseStatus.PENDING_REGISTRATION: CaseStage.REGISTER,
    CaseStatus.REGISTERED: CaseStage.DISPATCH,
    CaseStatus.DISPATCHED: CaseStage.HANDLE,
    CaseStatus.IN_PROGRESS: CaseStage.HANDLE,
    CaseStatus.AWAITING_VERIFICATION: CaseStage.VERIFY,
    CaseStatus.HUNG_UP: CaseStage.RESUME,
}


def stage_due_at(
    status: CaseStatus, handle_due_at: datetime | None, verify_due_at: datetime | None
) -> datetime | None:
    """The deadline of the step a case in `status` waits for: the handling deadline while
    units handle it, the verification deadline while it awaits verification, else none."""
    stage = STAGE_OF_STATUS.get(status)
    if stage is CaseStage.HANDLE:
        return handle_due_at
    if stage is CaseStage.VERIFY:
        return verify_due_at
    return None


#: The statuses' Chinese names, for exports and bulletins.
CASE_STATUS_NAMES: dict[CaseStatus, str] = {
    CaseStatus.PENDING_REGISTRATION: "待立案",
    CaseStatus.REGISTERED: "已立案",
    CaseStatus.DISPATCHED: "已派遣",
    CaseStatus.IN_PROGRESS: "处置中",
    CaseStatus.AWAITING_VERIFICATION: "待核查",
    CaseStatus.HUNG_UP: "挂账",
    CaseStatus.CLOSED: "已结案",
    CaseStatus.REJECTED: "不予立案",
    CaseStatus.CANCELLED: "已撤销",
}


class CaseSource(StrEnum):
    REPORT = "report"  # a road chief's, patroller's or supervisor's report
    WHISTLE = "whistle"
    INSPECTION = "inspection"
    PLATFORM = "platform"  # imported from the city's 数字城管 platform


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
    #: Handling deadline (处置时限): counted in working hours from the report, then the
    #: latest handling deadline of its open tasks while units handle it; kept once handled
    #: (the term the handling was held to). None for a fix on the spot.
    handle_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Verification deadline (核查时限), set each time the case reaches verification.
    verify_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fixed_on_spot: Mapped[bool] = mapped_column(Boolean, default=False)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    #: When the case was hung up (挂账); deadlines resume shifted by the pause.
    hung_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The verification deadline has passed and was recorded (the sweep's mark).
    verify_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Optimistic lock: a new case is version 1 and each step raises it by one
    #: (`steps.perform`); SQLAlchemy checks it on every UPDATE of the row, so a step
    #: taken on a version someone else has moved on fails. Set by the code, not by each
    #: flush: opening a case takes several flushes, and is one version.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: Any = {  # noqa: RUF012 - SQLAlchemy reads it off the class
        "version_id_col": version,
        "version_id_generator": False,
    }

    @property
    def stage(self) -> CaseStage | None:
        """The step the case waits for (None: finished)."""
        return STAGE_OF_STATUS.get(self.status)

    @property
    def stage_due_at(self) -> datetime | None:
        return stage_due_at(self.status, self.handle_due_at, self.verify_due_at)

    @property
    def lon(self) -> float:
        """Where the case is (WGS 84), as answers give it."""
        return float(to_shape(self.geom).x)

    @property
    def lat(self) -> float:
        return float(to_shape(self.geom).y)


class TaskStatus(StrEnum):
    """One unit's part of a case."""

    PENDING = "pending"  # 待签收
    SIGNED = "signed"  # 处置中
    DONE = "done"  # 已反馈
    RELEASED = "released"  # 已释放 (a cooperating unit no longer needed)
    RETURN_REQUESTED = "return_requested"  # 申请退回: "not ours", awaiting the centre
    RETURNED = "returned"  # 已退回: the centre upheld the return


#: A task someone must still work on (its deadlines run).
OPEN_TASK_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.SIGNED})
#: A task that still holds its unit to the case.
ACTIVE_TASK_STATUSES = OPEN_TASK_STATUSES | {TaskStatus.RETURN_REQUESTED}


class CaseTask(Base):
    """A unit's task on a case: the lead unit's (牵头) or a cooperating unit's (协办)."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "unit_id"),
        Index("ix_case_tasks_unit_id_status_handle_due_at", "unit_id", "status", "handle_due_at"),
        Index("ix_case_tasks_next_alarm_at", "next_alarm_at"),
        # A unit's queue (待办): its open tasks in deadline order, read a page at a time.
        Index(
            "ix_case_tasks_open_unit_id_handle_due_at",
            "unit_id",
            "handle_due_at",
            "id",
            postgresql_where=text("status IN ('pending', 'signed')"),
            sqlite_where=text("status IN ('pending', 'signed')"),
        ),
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
    #: 80 % of the handling time is used up: the unit is warned (预警).
    handle_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sign_for_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: 0 until overdue; then each step up the road-chief levels (see `deadlines`).
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    #: When the sweep must next look at this task; None: nothing left to watch.
    next_alarm_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: An extension asked for (申请延期) and not yet decided.
    extension_requested_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Returns the centre refused (退回不成立): counted against the unit.
    returns_refused: Mapped[int] = mapped_column(Integer, default=0)


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
    RETURN_REQUESTED = "return_requested"  # 申请退回
    RETURN_DECIDED = "return_decided"  # 退回审核
    EXTENSION_REQUESTED = "extension_requested"  # 申请延期
    EXTENSION_DECIDED = "extension_decided"  # 延期审批
    HUNG_UP = "hung_up"  # 挂账
    RESUMED = "resumed"  # 恢复处置
    REOPENED = "reopened"  # 重新打开
    DEADLINE_WARNING = "deadline_warning"  # 临期预警
    SIGN_FOR_OVERDUE = "sign_for_overdue"  # 签收超时
    OVERDUE = "overdue"  # 处置超期
    ESCALATED = "escalated"  # 超期升级
    VERIFICATION_OVERDUE = "verification_overdue"  # 核查超期
    WHISTLE_BLOWN = "whistle_blown"  # 路长吹哨
    WHISTLE_REPORTED_IN = "whistle_reported_in"  # 部门报到
    WHISTLE_MISSED = "whistle_missed"  # 部门未报到
    EXTERNAL_UPDATE = "external_update"  # 外部系统更新 (Open311 servicerequestupdates)


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


class _FactColumns:
    """The columns of a case's KPI facts (`CaseFact`), shared with their copy as of the end
    of the case's month (`CaseFactAtMonthEnd`)."""

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    #: 0: the case's own row; else the unit (units.id) whose task the row is.
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The case's period and places, copied from the case with every write.
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    jurisdiction_path: Mapped[str] = mapped_column(String(400))
    street_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    segment_code: Mapped[str | None] = mapped_column(String(32))
    category_code: Mapped[str] = mapped_column(String(64))
    # The case's row (flags are 0/1 integers: both engines sum them alike).
    #: When an event last changed the case's facts (its own or its tasks'): a period that
    #: ended before then replays the case's events instead (`assessment.service.kpis`).
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Its status after its latest event that set one.
    status: Mapped[str | None] = mapped_column(String(32))
    registered: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    #: In every row of a cancelled case (a cancelled case's tasks are no one's work).
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    fed_back: Mapped[int] = mapped_column(Integer, default=0)
    reworked: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)
    #: The unit the case counts for (its latest dispatch's first), None once that unit's
    #: return is upheld, until the next dispatch.
    lead_unit_id: Mapped[int | None] = mapped_column(Integer)
    # A task's row.
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    #: working (pending, signed, done, asking to return), released or returned.
    state: Mapped[str | None] = mapped_column(String(16))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sign_late_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Working hours from dispatch to the first feedback, as that event kept them.
    fed_hours: Mapped[float | None] = mapped_column(Float)
    late_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    upheld: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    extensions: Mapped[int] = mapped_column(Integer, default=0)


class CaseFact(_FactColumns, Base):
    """What the KPIs need to know of a case, and of each unit's task on it, kept up to date
    with every event (`app.cases.facts`): the per-case facts in the row of unit 0, the
    per-task facts in the row of each unit dispatched to it. One table, so that each step
    writes its facts in one statement; the place and period of the case are copied into
    every row, so a period's figures by any dimension are one indexed aggregate. The events
    stay the evidence: `roadchief assessment rebuild-facts` recomputes these from them.
    """

    __tablename__ = "case_facts"
    __table_args__ = (
        Index("ix_case_facts_reported_at", "reported_at"),
        Index("ix_case_facts_street_code_reported_at", "street_code", "reported_at"),
        Index("ix_case_facts_segment_code_reported_at", "segment_code", "reported_at"),
        Index("ix_case_facts_category_code_reported_at", "category_code", "reported_at"),
        Index("ix_case_facts_unit_id_reported_at", "unit_id", "reported_at"),
        Index("ix_case_facts_changed_at", "changed_at"),
    )


class CaseFactAtMonthEnd(_FactColumns, Base):
    """A case's facts as they stood at the end of the month it was reported in (月末事实),
    kept for the cases that changed after it: the first step after the month's end copies
    its rows before changing them (`app.cases.facts.keep`). A month that is over but not
    yet closed reads these instead of replaying the changed cases' events."""

    __tablename__ = "case_facts_month_end"
    __table_args__ = (Index("ix_case_facts_month_end_reported_at", "reported_at"),)
