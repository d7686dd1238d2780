"""Photo schemas."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.core.moments import LocalMoment


class PhotoOut(BaseModel):
    """A stored photo: what EXIF said, and where to fetch its sizes."""

    id: int
    sha256: str = Field(
        description="SHA-256 of the original bytes (photos of the same bytes share the file)."
    )
    format: str = Field(examples=["JPEG"])
    byte_size: int
    width: int = Field(description="As seen, after the EXIF orientation.")
    height: int
    taken_at: LocalMoment | None = Field(description="EXIF capture time (拍摄时间).")
    exif_lon: float | None = Field(description="EXIF GPS position, WGS 84.")
    exif_lat: float | None
    original_url: str = Field(description="The original as uploaded, EXIF included.")
    display_url: str = Field(description="At most 1600 px, no metadata.")
    thumbnail_url: str = Field(description="At most 320 px, no metadata.")
