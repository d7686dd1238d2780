"""What Pillow does to an uploaded photo: check it, orient it, read its EXIF, derive sizes.

Order matters: the decompression-bomb limit is checked from the header before any pixel is
decoded; EXIF orientation is applied before anything is derived (a portrait shot must
never come out sideways); derived images are encoded fresh, so they carry no EXIF and no
location. Sequential JPEGs (what phone cameras write) are decoded at reduced scale
(`draft`: 1/2, 1/4 or 1/8) when the derived sizes allow it: most of the cost of a
12-megapixel phone photo, and what lets a 108- or 200-megapixel one in within the same
memory. The limit counts the pixels actually decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from app.core.errors import Problem
from app.core.inputs import within_service_years

register_heif_opener()
# Pillow's own bomb guard refuses at open, before the format is known, anything over
# ~179 megapixels, and warns over ~89: a 108- or 200-megapixel phone JPEG, which decodes
# reduced. The limits are checked below, from the header, per format.
Image.MAX_IMAGE_PIXELS = None

#: Pillow format names accepted, and the extension each original is stored under.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}


class PhotoUnsupported(Problem):
    code = "photo_format_unsupported"
    status = 415
    title = "不支持的图片格式（请上传 JPEG、PNG、WebP 或 HEIC 照片）"


class PhotoCorrupt(Problem):
    code = "photo_corrupt"
    status = 422
    title = "照片已损坏或不完整"


class PhotoTooLarge(Problem):
    code = "photo_too_large"
    status = 413
    title = "照片文件过大"


class PhotoTooManyPixels(Problem):
    code = "photo_too_many_pixels"
    status = 422
    title = "照片像素过多"


@dataclass(frozen=True)
class Derived:
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class PhotoFacts:
    format: str
    width: int
    height: int
    taken_at: datetime | None
    lon: float | None
    lat: float | None
    display: Derived
    thumbnail: Derived


def _rational(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    try:
        lat_ref, lat = gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude]
        lon_ref, lon = gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude]
        lat_deg = sum(_rational(v) / 60**i for i, v in enumerate(lat))
        lon_deg = sum(_rational(v) / 60**i for i, v in enumerate(lon))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if str(lat_ref).upper().startswith("S"):
        lat_deg = -lat_deg
    if str(lon_ref).upper().startswith("W"):
        lon_deg = -lon_deg
    if not (-180 <= lon_deg <= 180 and -90 <= lat_deg <= 90) or (lon_deg == 0 and lat_deg == 0):
        return None, None
    return lon_deg, lat_deg


def _taken_at(exif: Image.Exif, zone: tzinfo) -> datetime | None:
    """Capture time: EXIF DateTimeOriginal, in its offset if given, else the local zone;
    none when the date is unreadable or outside the service's years."""
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    raw = ifd.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if not raw:
        return None
    try:
        # EXIF keeps no zone: it is attached below.
        naive = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007
    except ValueError:
        return None
    if not within_service_years(naive):
        return None  # a camera's reset or forged clock (year 1, 9999): no capture time
    offset = ifd.get(ExifTags.Base.OffsetTimeOriginal)
    if offset:
        try:
            sign = -1 if str(offset).startswith("-") else 1
            hours, minutes = str(offset).lstrip("+-").split(":")
            zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except ValueError:
            pass
    return naive.replace(tzinfo=zone)


def _save_jpeg(image: Image.Image, path: Path) -> Derived:
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(path, "JPEG", quality=85)  # no exif= → no metadata, no location
    return Derived(path, image.width, image.height)


def _decode_reduced(
    image: Image.Image, *, max_pixels: int, max_jpeg_pixels: int, display_px: int
) -> None:
    """Set up the smallest decode that still covers the display size, or refuse (422) a
    photo whose decode would pass the limit.

    Only a sequential JPEG decodes reduced, up to `max_jpeg_pixels` in all. A progressive
    JPEG holds every coefficient of the full image in memory whatever the scale (600 MB
    at 200 megapixels), so it counts whole, like PNG, WebP and HEIC.
    """
    width, height = image.size
    sequential_jpeg = image.format == "JPEG" and not image.info.get("progressive")
    if sequential_jpeg and width * height > max_jpeg_pixels:
        raise PhotoTooManyPixels(
            f"{width}×{height} 超过 JPEG 照片 {max_jpeg_pixels:,} 像素的上限",
            width=width, height=height, max_pixels=max_jpeg_pixels,
        )  # fmt: skip
    if sequential_jpeg:
        # Ask for the aspect-correct box: a square one would not be covered at half scale
        # by a 4:3 photo, and Pillow would decode it whole.
        factor = display_px / max(width, height)
        image.draft("RGB", (round(width * factor), round(height * factor)))
    if image.width * image.height > max_pixels:
        progressive = image.format == "JPEG" and not sequential_jpeg
        whole = "（渐进式 JPEG 须整幅解码）" if progressive else ""
        raise PhotoTooManyPixels(
            f"{width}×{height} 超过 {max_pixels:,} 像素的上限{whole}",
            width=width, height=height, max_pixels=max_pixels,
        )  # fmt: skip


def process_photo(
    source: Path,
    workdir: Path,
    *,
    max_pixels: int,
    max_jpeg_pixels: int,
    display_px: int,
    thumbnail_px: int,
    zone: tzinfo,
) -> PhotoFacts:
    """Check and derive one photo file; derived JPEGs are written into `workdir`."""
    try:
        image = Image.open(source)
    except UnidentifiedImageError:
        raise PhotoUnsupported() from None
    except OSError as exc:
        raise PhotoCorrupt(str(exc)) from None
    with image:
        if image.format not in FORMATS:
            raise PhotoUnsupported(f"收到的是 {image.format} 格式")
        width, height, image_format = image.width, image.height, image.format
        # Before anything else reads the file: a PNG's getexif() decodes the whole image.
        _decode_reduced(
            image, max_pixels=max_pixels, max_jpeg_pixels=max_jpeg_pixels, display_px=display_px
        )
        exif = image.getexif()
        taken_at = _taken_at(exif, zone)
        lon, lat = _gps(exif)
        # The size as seen once rotated: orientations 5 to 8 turn the picture a quarter.
        rotated = exif.get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
        full = (height, width) if rotated else (width, height)
        try:
            image.load()
            # Turned upright in place: no second full-size copy in memory.
            ImageOps.exif_transpose(image, in_place=True)
        except (OSError, SyntaxError, ValueError) as exc:
            raise PhotoCorrupt("图片数据不完整或已损坏") from exc
        image.thumbnail((display_px, display_px), Image.Resampling.LANCZOS, reducing_gap=3.0)
        display = _save_jpeg(image, workdir / "display.jpg")
        image.thumbnail((thumbnail_px, thumbnail_px), Image.Resampling.LANCZOS)
        thumbnail = _save_jpeg(image, workdir / "thumb.jpg")
    return PhotoFacts(
        format=str(image_format),
        width=full[0],
        height=full[1],
        taken_at=taken_at,
        lon=lon,
        lat=lat,
        display=display,
        thumbnail=thumbnail,
    )
