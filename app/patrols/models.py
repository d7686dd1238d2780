"""Patrols, their GPS fixes and the segments they covered."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.coords import CoordinateSystem
from app.core.database import Base, TimestampMixin, UTCDateTime, str_enum, utcnow


class PatrolStatus(StrEnum):
    ACTIVE = "active"  # 巡查中
    PAUSED = "paused"  # 暂停
    ENDED = "ended"  # 已结束


class FixFlag(StrEnum):
    """Why a fix is left out of the track (kept, with its reason, as evidence)."""

    POOR_ACCURACY = "poor_accuracy"  # the phone's own accuracy is worse than allowed
    IMPOSSIBLE_SPEED = "impossible_speed"  # too far from the last good fix for the time
    CLOCK_AHEAD = "clock_ahead"  # recorded after it was received (a clock running ahead)
    BEFORE_START = "before_start"  # recorded before the patrol began
    AFTER_END = "after_end"  # recorded after the patrol ended


class OutOfWindow(StrEnum):
    """Why a fix is refused: recorded outside its patrol's time (not stored)."""

    CLOCK_AHEAD = FixFlag.CLOCK_AHEAD.value
    BEFORE_START = FixFlag.BEFORE_START.value
    AFTER_END = FixFlag.AFTER_END.value


class Patrol(TimestampMixin, Base):
    """One road chief's patrol (巡查): from start to end, with pauses; may cover several
    segments. The track and the measures are computed when it ends."""

    __tablename__ = "patrols"
    __table_args__ = (Index("ix_patrols_user_id_started_at", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[PatrolStatus] = mapped_column(str_enum(PatrolStatus), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Seconds spent paused, before the current pause.
    paused_s: Mapped[float] = mapped_column(Float, default=0.0)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    track: Mapped[WKBElement | None] = mapped_column(Geometry("LINESTRING", srid=4326))
    distance_m: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    fix_count: Mapped[int] = mapped_column(Integer, default=0)
    kept_fix_count: Mapped[int | None] = mapped_column(Integer)
    #: Late fixes arrived after the end: the measures are taken again by the background
    #: jobs (`remeasure_due`), once for however many batches, not in the phone's request.
    remeasure_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    @property
    def remeasure_pending(self) -> bool:
        return self.remeasure_requested_at is not None


class PatrolFix(Base):
    """One GPS fix of a patrol, as sent; `flag` says why it is left out of the track."""

    __tablename__ = "patrol_fixes"
    # A phone resending a batch sends the same fixes: one per moment is kept.
    __table_args__ = (UniqueConstraint("patrol_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Not indexed: fixes are read by patrol, and every index slows the ingest.
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, nullable=False, spatial_index=False)
    )
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    coordinate_system: Mapped[CoordinateSystem] = mapped_column(str_enum(CoordinateSystem))
    flag: Mapped[FixFlag | None] = mapped_column(str_enum(FixFlag))


class PatrolReport(Base):
    """A report made during a patrol: the patrol's findings."""

    __tablename__ = "patrol_reports"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), index=True)


class PatrolSegment(Base):
    """How much of one road segment a finished patrol covered."""

    __tablename__ = "patrol_segments"

    patrol_id: Mapped[int] = mapped_column(
        ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True
    )
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("road_segments.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    length_m: Mapped[float] = mapped_column(Float)
    covered_m: Mapped[float] = mapped_column(Float)
    covered_share: Mapped[float] = mapped_column(Float)
    #: The share reached `patrol_complete_share`: a complete patrol of the segment.
    complete: Mapped[bool] = mapped_column(Boolean)
    #: The covered parts (within the buffer of the track), for the map.
    covered: Mapped[WKBElement | None] = mapped_column(
        Geometry("MULTILINESTRING", srid=4326, spatial_index=False)
    )


class CheckInPurpose(StrEnum):
    MEETING = "meeting"  # 例会: the road team meets
    ON_SITE = "on_site"  # 现场处置: handling a problem from the workstation
    DUTY = "duty"  # 值班


class WorkstationCheckIn(Base):
    """A chief's presence at a road-chief workstation (路长工作站签到): in, and later out,
    each standing near it."""

    __tablename__ = "workstation_check_ins"
    __table_args__ = (
        # One open check-in per person: a second, even sent twice at once, is refused.
        Index(
            "uq_workstation_check_ins_open_user_id",
            "user_id",
            unique=True,
            postgresql_where=text("checked_out_at IS NULL"),
            sqlite_where=text("checked_out_at IS NULL"),
        ),
        Index("ix_workstation_check_ins_workstation_id_id", "workstation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workstation_id: Mapped[int] = mapped_column(ForeignKey("workstations.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    purpose: Mapped[CheckInPurpose] = mapped_column(str_enum(CheckInPurpose))
    note: Mapped[str | None] = mapped_column(Text)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    in_distance_m: Mapped[float] = mapped_column(Float)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    out_distance_m: Mapped[float | None] = mapped_column(Float)
