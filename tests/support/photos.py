"""Phone-like photos made with Pillow: EXIF orientation, GPS position, capture time."""

from __future__ import annotations

import io
from datetime import datetime

from PIL import ExifTags, Image


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    return (float(degrees), float(minutes), round((minutes_float - minutes) * 60, 4))


def jpeg(
    width: int = 400,
    height: int = 300,
    *,
    orientation: int | None = None,
    gps: tuple[float, float] | None = None,
    taken_at: datetime | None = None,
    seed: int = 0,
) -> bytes:
    """A JPEG whose left half is red and right half blue (so a rotation shows), plus
    whatever EXIF is asked for. `seed` changes a pixel, making distinct bytes."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    image.putpixel((width - 1, height - 1), (seed % 256, seed // 256 % 256, 7))
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        lon, lat = gps
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: _dms(lat),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: _dms(lon),
        }
    if taken_at is not None:
        exif[ExifTags.IFD.Exif] = {
            # EXIF's fixed width, as a camera writes it (strftime gives year 1 as "1").
            ExifTags.Base.DateTimeOriginal: f"{taken_at.year:04d}:{taken_at:%m:%d %H:%M:%S}",
            ExifTags.Base.OffsetTimeOriginal: taken_at.strftime("%z")[:3]
            + ":"
            + taken_at.strftime("%z")[3:],
        }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()
