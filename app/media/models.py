"""Photos (照片): one row per upload, owned by its uploader; the files are shared."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime, utcnow


class Photo(Base):
    """An uploaded photo, its uploader's own. Files are stored content-addressed: rows of
    the same bytes (several people sending one picture) share them, and a file goes only
    when no row uses it any more.

    The original keeps its EXIF (it is evidence) and is served only to users who may see
    a report using it; the display and thumbnail sizes are re-encoded without metadata.
    """

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(16))
    byte_size: Mapped[int] = mapped_column(Integer)
    #: Size as seen, after the EXIF orientation is applied.
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    original_key: Mapped[str] = mapped_column(String(200))
    display_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    #: From EXIF, kept as evidence (拍摄时间、拍摄位置), WGS 84.
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    uploaded_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class PhotoUse(Base):
    """A photo used as evidence by something in a jurisdiction (a report, a case step).

    Who may fetch a photo follows from its uses (their jurisdiction paths), so the media
    package decides access without knowing reports or cases. A photo with no use after a
    while is an abandoned upload and is swept away.
    """

    __tablename__ = "photo_uses"
    __table_args__ = (Index("ix_photo_uses_photo_id_path", "photo_id", "jurisdiction_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="RESTRICT"))
    #: What uses it, e.g. "report:12" or "case_event:40".
    used_by: Mapped[str] = mapped_column(String(64), index=True)
    jurisdiction_path: Mapped[str] = mapped_column(String(400))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
