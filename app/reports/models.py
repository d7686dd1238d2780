"""Reports and the photos they carry."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.coords import CoordinateSystem
from app.core.database import Base, UTCDateTime, str_enum, utcnow
from app.routing.models import Urgency


class PhotoRole(StrEnum):
    BEFORE = "before"  # the problem as found
    AFTER = "after"  # after fixing it on the spot (整改后)


class Report(Base):
    """One report as the phone sent it, and the case it became or joined."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The user who reported; None when a machine client reported (Open311, an API key).
    reporter_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    reporter_api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="RESTRICT"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    #: Joined an open case of the same problem instead of opening one (并案).
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    fixed_on_spot: Mapped[bool] = mapped_column(Boolean, default=False)
    category_code: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency))
    description: Mapped[str] = mapped_column(Text)
    coordinate_system: Mapped[CoordinateSystem] = mapped_column(str_enum(CoordinateSystem))
    #: As sent by the phone, in `coordinate_system`.
    input_lon: Mapped[float] = mapped_column(Float)
    input_lat: Mapped[float] = mapped_column(Float)
    #: WGS 84 (converted from GCJ-02 when needed).
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, nullable=False))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    asset_code: Mapped[str | None] = mapped_column(String(64))
    device_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    jurisdiction_path: Mapped[str] = mapped_column(String(400), index=True)
    #: Photos a civic client holds itself, as links (Open311 `media_url`): never fetched.
    media_urls: Mapped[list[str]] = mapped_column(JSON, default=list)


class ReportPhoto(Base):
    """A photo of a report, with what its EXIF says against the report (evidence flags)."""

    __tablename__ = "report_photos"
    __table_args__ = (UniqueConstraint("report_id", "photo_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="RESTRICT"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="RESTRICT"), index=True)
    role: Mapped[PhotoRole] = mapped_column(str_enum(PhotoRole))
    position: Mapped[int] = mapped_column(Integer)
    #: From the EXIF GPS position to the reported point, metres.
    exif_distance_m: Mapped[float | None] = mapped_column(Float)
    #: From the EXIF capture time to the report's device time, hours.
    exif_age_hours: Mapped[float | None] = mapped_column(Float)
    taken_far_away: Mapped[bool] = mapped_column(Boolean, default=False)
    taken_long_before: Mapped[bool] = mapped_column(Boolean, default=False)
