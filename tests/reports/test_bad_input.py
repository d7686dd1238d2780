"""Bad input from the phone gets a specific problem, and nothing is stored: no report, no
case, no photo row, no file left in the media directory."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pillow_heif import from_pillow
from sqlalchemy.orm import Session

from app.core.database import utcnow
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.photos import png
from tests.support.places import Spot
from tests.support.reports import multipart, new_key, report_body, stored, upload


def test_each_bad_report_is_refused_and_stores_nothing(
    phone: Callable[[str], TestClient],
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    client = phone("demo-chief-3")
    key = new_key()
    assert multipart(client, report_body(spot), [good_jpeg()], key=key).status_code == 201
    truncated = good_jpeg()[:-400]
    one = [good_jpeg()]
    cases: list[tuple[str, dict[str, Any], list[bytes], int, str]] = [
        ("no category", {"category_code": None}, one, 422, "validation_failed"),
        ("unknown category", {"category_code": "roads.ufo"}, one, 422, "unknown_category"),
        ("a group", {"category_code": "roads"}, one, 422, "category_is_group"),
        ("Shanghai", {"lon": 121.47, "lat": 31.23}, one, 422, "outside_service_area"),
        ("not a place", {"lon": 181.0}, one, 422, "invalid_location"),
        ("absurd accuracy", {"accuracy_m": 5000}, one, 422, "location_too_inaccurate"),
        ("no photo", {}, [], 422, "photo_required"),
        ("not an image", {}, [b"%PDF-1.4 not a photo"], 415, "photo_format_unsupported"),
        ("truncated", {}, [good_jpeg(), truncated], 422, "photo_corrupt"),
        # The form parser stops at the photos a report may hold: a specific 413.
        ("too many", {}, [good_jpeg() for _ in range(10)], 413, "form_limit_exceeded"),
        (
            "from the future",
            {"device_time": (utcnow() + timedelta(hours=2)).isoformat()},
            [good_jpeg()],
            422,
            "device_time_in_future",
        ),
        ("unknown asset", {"asset_code": "MH-NOPE"}, one, 422, "unknown_asset"),
        ("unknown duplicate", {"duplicate_of": "2099"}, one, 422, "duplicate_case_invalid"),
        ("reused key", {"description": "另一件事"}, one, 422, "idempotency_key_reused"),
    ]  # fmt: skip
    before = stored(session, settings)
    for name, change, photos, status, code in cases:
        body = {k: v for k, v in report_body(spot, **change).items() if v is not None}
        response = multipart(client, body, photos, key=key if name == "reused key" else None)
        assert (response.status_code, response.json()["code"]) == (status, code), name
        assert stored(session, settings) == before, name


def test_bad_references_in_a_json_report(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    client = phone("demo-chief-3")
    someone_elses = upload(client, good_jpeg(), "x.jpg")["id"]
    before = stored(session, settings)
    patroller = as_user("demo-patroller")
    cases = [
        ({"photos": [{"photo_id": 999_999}]}, patroller, "unknown_photo"),
        ({"photos": [{"photo_id": someone_elses}]}, patroller, "unknown_photo"),
        ({"photos": [{"photo_id": 1, "role": "sideways"}]}, patroller, "validation_failed"),
        ({"lon": "东经113度"}, patroller, "validation_failed"),
    ]  # fmt: skip
    for change, headers, code in cases:
        response = client.post("/api/v1/reports", json=report_body(spot, **change), headers=headers)
        assert (response.status_code, response.json()["code"]) == (422, code), change
    bad_json = client.post(
        "/api/v1/reports/multipart", data={"report": "{not json"}, files=[("photos", ("a", b"x"))]
    )
    assert (bad_json.status_code, bad_json.json()["code"]) == (422, "validation_failed")
    assert bad_json.json()["errors"][0]["loc"][0] == "report"
    assert stored(session, settings) == before
    # Who may report at all: not department staff, not assessors, not API keys.
    staff = client.post("/api/v1/reports", json=report_body(spot), headers=as_user("demo-staff"))
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("limit", "photo", "status", "code"),
    [
        ({"photo_max_bytes": 2048}, "big", 413, "photo_too_large"),
        ({"photo_max_pixels": 100_000}, "big", 422, "photo_too_many_pixels"),
    ],
)
def test_limits_on_photo_size_are_configurable(
    app_with: Callable[..., TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
    limit: dict[str, int],
    photo: str,
    status: int,
    code: str,
) -> None:
    client = app_with(as_user("demo-chief-3"), **limit)
    big = good_jpeg(width=800, height=600)
    before = stored(session, settings)

    response = multipart(client, report_body(spot), [big])
    single = client.post("/api/v1/photos", files={"file": ("b.jpg", big, "image/jpeg")})

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert (single.status_code, single.json()["code"]) == (status, code)
    assert stored(session, settings) == before


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (120, 90), (200, 30, 30))
    out = io.BytesIO()
    if fmt == "HEIF":
        from_pillow(image).save(out, quality=80)
    else:
        image.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_png_webp_and_heic_are_accepted(phone: Callable[[str], TestClient], fmt: str) -> None:
    client = phone("demo-chief-3")
    data = png(121, 91) if fmt == "PNG" else _encoded(fmt)

    photo = upload(client, data, f"p.{fmt.lower()}")

    assert photo["format"] == fmt
    display = client.get(photo["display_url"])
    assert display.headers["content-type"] == "image/jpeg"
    again = upload(client, data)  # the same bytes are the same photo
    assert again["id"] == photo["id"]
