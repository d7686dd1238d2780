"""Whistles (吹哨) and the summonses they send to departments (部门报到)."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, UTCDateTime, utcnow


class Whistle(Base):
    """A road chief's summons of named departments to a place on one of their segments.

    "路长吹哨、部门报到": each summoned unit must report in on site before `report_in_due_at`;
    who came, when, and who did not is the record (`WhistleSummons`).
    """

    __tablename__ = "whistles"

    id: Mapped[int] = mapped_column(primary_key=True)
    blown_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    blown_by_user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("road_segments.id", ondelete="RESTRICT"), index=True
    )
    #: Jurisdiction path of the place's deepest jurisdiction, for scoped reads.
    jurisdiction_path: Mapped[str] = mapped_column(String(400), index=True)
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))
    category_code: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    report_in_due_at: Mapped[datetime] = mapped_column(UTCDateTime())

    summonses: Mapped[list[WhistleSummons]] = relationship(
        back_populates="whistle", order_by="WhistleSummons.id"
    )


class WhistleSummons(Base):
    """One unit summoned by a whistle, and its report-in (报到) once it came."""

    __tablename__ = "whistle_summonses"
    __table_args__ = (UniqueConstraint("whistle_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    whistle_id: Mapped[int] = mapped_column(ForeignKey("whistles.id", ondelete="RESTRICT"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reported_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    report_geom: Mapped[WKBElement | None] = mapped_column(Geometry("POINT", srid=4326))
    report_accuracy_m: Mapped[float | None] = mapped_column(Float)
    report_distance_m: Mapped[float | None] = mapped_column(Float)
    report_note: Mapped[str | None] = mapped_column(Text)
    #: When the sweep recorded the missed report-in in the case's history.
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    whistle: Mapped[Whistle] = relationship(back_populates="summonses")


class WhistleCase(Base):
    """The case a whistle opened or joined: its report-ins and misses go into its history."""

    __tablename__ = "whistle_cases"

    whistle_id: Mapped[int] = mapped_column(
        ForeignKey("whistles.id", ondelete="RESTRICT"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
