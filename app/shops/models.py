"""A chief's visit to a street-front shop and what it found, item by item."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.coords import CoordinateSystem
from app.core.database import Base, UTCDateTime, str_enum, utcnow


class ShopVisit(Base):
    """One visit (走访) to a shop to check its frontage pledge, standing near it."""

    __tablename__ = "shop_visits"
    __table_args__ = (
        Index("ix_shop_visits_shop_id_visited_at", "shop_id", "visited_at"),
        Index("ix_shop_visits_user_id_visited_at", "user_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: When the phone recorded it (an offline visit is sent later).
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Where the visitor stood, WGS 84, and how far that is from the shop.
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, nullable=False, spatial_index=False)
    )
    coordinate_system: Mapped[CoordinateSystem] = mapped_column(str_enum(CoordinateSystem))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    patrol_id: Mapped[int | None] = mapped_column(
        ForeignKey("patrols.id", ondelete="SET NULL"), index=True
    )


class ShopVisitItem(Base):
    """One pledge item as checked on a visit: pass or fail, and the case a fail opened."""

    __tablename__ = "shop_visit_items"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("shop_visits.id", ondelete="CASCADE"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    #: The report filed for a failed item ("open a case"): it opened or joined a case.
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="RESTRICT"))


class ShopVisitPhoto(Base):
    """A photo of a failed item, as evidence."""

    __tablename__ = "shop_visit_photos"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("shop_visits.id", ondelete="CASCADE"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class ShopRating(Base):
    """An assessor's rating of a shop (红黑旗评比, 星级商户): a flag, stars, a note."""

    __tablename__ = "shop_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    flag: Mapped[str | None] = mapped_column(String(8))
    stars: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)


class ShopCreditEvent(Base):
    """One move of a shop's credit score (诚信分), with why and the balance after."""

    __tablename__ = "shop_credit_events"
    __table_args__ = (Index("ix_shop_credit_events_shop_id_id", "shop_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="RESTRICT"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(32))
    delta: Mapped[float] = mapped_column(Float)
    balance: Mapped[float] = mapped_column(Float)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("shop_visits.id", ondelete="SET NULL"))
    rating_id: Mapped[int | None] = mapped_column(
        ForeignKey("shop_ratings.id", ondelete="SET NULL")
    )
