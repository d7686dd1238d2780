"""Phones that shoot 108 or 200 megapixels exist: their JPEGs are taken, decoded reduced;
a decompression bomb (a small file claiming a huge picture) is refused for its pixels, with
the limit in the answer, and nothing is stored."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.support import Headers
from tests.support.photos import jpeg, png
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, stored


@pytest.fixture(scope="session")
def phone_108mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12000×9000 JPEG (108 megapixels) shot in portrait (EXIF orientation 6), made once
    per session: its left half red, its right half blue."""
    path = tmp_path_factory.mktemp("photos") / "phone-108mp.jpg"
    path.write_bytes(jpeg(12000, 9000, orientation=6))
    return path


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims width × height RGB pixels, with a few rows of data: a
    decompression bomb as it looks before anything is decoded (2.7 GB once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 8)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_a_png_bomb_is_refused_for_its_pixels_with_the_limit(
    phone: Callable[[str], TestClient], spot: Spot, session: Session, settings: Settings
) -> None:
    client = phone("demo-chief-3")
    bomb = png_bomb()
    before = stored(session, settings)

    single = client.post("/api/v1/photos", files={"file": ("b.png", bomb, "image/png")})
    reported = multipart(client, report_body(spot), [bomb])

    for answer in (single, reported):
        assert (answer.status_code, answer.json()["code"]) == (422, "photo_too_many_pixels")
        body = answer.json()
        assert (body["width"], body["height"]) == (30000, 30000)
        assert body["max_pixels"] == settings.photo_max_pixels == 50_000_000
        assert "50,000,000" in body["detail"]
    assert stored(session, settings) == before


def test_a_108_megapixel_phone_jpeg_is_taken_decoded_reduced(
    phone: Callable[[str], TestClient], spot: Spot, phone_108mp: Path
) -> None:
    client = phone("demo-chief-3")

    answer = multipart(client, report_body(spot), [phone_108mp.read_bytes()])

    assert answer.status_code == 201, answer.text
    [item] = answer.json()["photos"]
    photo = item["photo"]
    assert (photo["format"], photo["width"], photo["height"]) == ("JPEG", 9000, 12000)
    shown = Image.open(io.BytesIO(client.get(photo["display_url"]).content))
    assert shown.size == (1200, 1600)
    assert shown.getpixel((600, 40))[0] > 200  # the red half on top: turned upright


@pytest.mark.parametrize(
    ("name", "make", "status", "max_pixels"),
    [
        # Sequential, as cameras write it: decoded at half scale, 400×300 ≤ 150,000.
        ("phone JPEG over the limit", lambda: jpeg(800, 600), 201, None),
        # Progressive: every coefficient is held whatever the scale, so it counts whole.
        ("progressive JPEG", lambda: _progressive(800, 600), 422, 150_000),
        ("PNG", lambda: png(800, 600), 422, 150_000),
        # Even reduced, no JPEG over its own limit.
        ("JPEG over the JPEG limit", lambda: jpeg(1600, 1200), 422, 1_500_000),
    ],
)
def test_only_sequential_jpegs_pass_the_pixel_limit_and_only_up_to_theirs(
    app_with: Callable[..., TestClient],
    as_user: Headers,
    name: str,
    make: Callable[[], bytes],
    status: int,
    max_pixels: int | None,
) -> None:
    limits = {"photo_max_pixels": 150_000, "photo_max_jpeg_pixels": 1_500_000}
    client = app_with(as_user("demo-chief-3"), photo_display_px=400, **limits)

    answer = client.post("/api/v1/photos", files={"file": ("p", make(), "image/jpeg")})

    assert answer.status_code == status, (name, answer.text)
    if status == 422:
        assert answer.json()["code"] == "photo_too_many_pixels"
        assert answer.json()["max_pixels"] == max_pixels
    else:
        assert (answer.json()["width"], answer.json()["height"]) == (800, 600)


def _progressive(width: int, height: int) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.save(out, "JPEG", quality=90, progressive=True)
    return out.getvalue()
