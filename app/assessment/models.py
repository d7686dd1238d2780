"""Field inspections (第三方考评): an assessor walks a segment and deducts against the
checklist; each deduction is placed, photographed and charged to a department."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime, utcnow


class Inspection(Base):
    """One inspection of one road segment, scored out of 100."""

    __tablename__ = "inspections"
    __table_args__ = (
        Index("ix_inspections_segment_id_started_at", "segment_id", "started_at"),
        Index("ix_inspections_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("road_segments.id", ondelete="RESTRICT"))
    #: The segment's street, for scope.
    jurisdiction_path: Mapped[str] = mapped_column(String(400), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The assessor's walk, when the phone recorded one.
    track: Mapped[WKBElement | None] = mapped_column(
        Geometry("LINESTRING", srid=4326, spatial_index=False)
    )
    note: Mapped[str | None] = mapped_column(Text)
    checklist_name: Mapped[str] = mapped_column(String(200))
    deducted: Mapped[float] = mapped_column(Float)
    #: 100 minus the deductions, never below 0.
    score: Mapped[float] = mapped_column(Float)


class InspectionDeduction(Base):
    """One finding: a checklist item, how many times, where, and who it is charged to."""

    __tablename__ = "inspection_deductions"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(
        ForeignKey("inspections.id", ondelete="CASCADE"), index=True
    )
    item_code: Mapped[str] = mapped_column(String(32))
    category_code: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer)
    points: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, nullable=False, spatial_index=False)
    )
    distance_m: Mapped[float] = mapped_column(Float)
    #: The department the finding's category is routed to there (its lead unit).
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    #: The report filed for it ("open a case"), which opened or joined a case.
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="RESTRICT"))


class InspectionPhoto(Base):
    __tablename__ = "inspection_photos"

    deduction_id: Mapped[int] = mapped_column(
        ForeignKey("inspection_deductions.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class AssessmentPeriod(Base):
    """A closed assessment period (考核期): its figures were frozen when it closed."""

    __tablename__ = "assessment_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(16), unique=True)
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class AssessmentSnapshot(Base):
    """One frozen answer of a closed period: the KPIs by a dimension, inspection scores, a
    ranking; served as it was stored, corrections applied."""

    __tablename__ = "assessment_snapshots"
    __table_args__ = (UniqueConstraint("period_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(
        ForeignKey("assessment_periods.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AssessmentCorrection(Base):
    """An admin's correction of a closed period's figure: the event that explains it."""

    __tablename__ = "assessment_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(
        ForeignKey("assessment_periods.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[float | None] = mapped_column(Float)
    new_value: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    corrected_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
