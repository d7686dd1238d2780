"""Cases that came from the city's 数字城管 platform, by the platform's own number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime, utcnow


class PlatformCase(Base):
    """A case imported from the platform: its platform number (平台案件编号) is kept, and
    a second import of that number updates nothing and creates nothing."""

    __tablename__ = "platform_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_number: Mapped[str] = mapped_column(String(64), unique=True)
    #: The case it opened, or joined (the intake found the same problem already open).
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The record as the platform sent it (its classes, times, photo links).
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
