"""A road chief reports a problem from the phone: placed, routed, answered, never doubled."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.coords import wgs84_to_gcj02
from app.core.database import utcnow
from app.media.models import Photo, PhotoUse
from app.media.service import sweep_orphans
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.places import Spot
from tests.support.reports import multipart, new_key, report_body, stored, upload

SHANGHAI_TIME = timedelta(hours=8)
SHANGHAI_TIME_ZONE = timezone(SHANGHAI_TIME)


def test_two_step_report_is_placed_routed_and_answered(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    client = phone("demo-chief-3")
    photo = upload(client, good_jpeg())
    assert photo["width"] == 400
    assert photo["display_url"].endswith("/display")

    key = new_key()
    body = report_body(spot, photos=[{"photo_id": photo["id"]}])
    response = client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": key})

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["case_status"] == "pending_registration"
    assert receipt["case_number"].startswith(receipt["received_at"][:10].replace("-", ""))
    assert [u["code"] for u in receipt["lead_units"]] == ["urban-management"]
    assert receipt["territorial_unit"]["code"] == "street-410199001"
    assert receipt["street"]["code"] == "410199001"
    assert receipt["segment"]["code"] == spot.segment_code
    assert {c["level"] for c in receipt["segment"]["chiefs"]} >= {2, 3}
    # roads.surface is urgent by default: 8 working hours to handle, so later today or on
    # a following working day, never sooner than 8 hours.
    received = datetime.fromisoformat(receipt["received_at"])
    due = datetime.fromisoformat(receipt["handle_due_at"])
    assert received.utcoffset() == due.utcoffset() == SHANGHAI_TIME
    assert due - received >= timedelta(hours=8)
    assert [p["photo"]["id"] for p in receipt["photos"]] == [photo["id"]]
    assert all(a["distance_m"] <= 30 for a in receipt["nearby_assets"])

    # The phone lost the answer and sends again: the same receipt, not a second report.
    again = client.post("/api/v1/reports", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == receipt
    changed = client.post(
        "/api/v1/reports",
        json={**body, "description": "另一个问题"},
        headers={"Idempotency-Key": key},
    )
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    mine = client.get("/api/v1/reports/mine").json()["items"]
    assert [r["report_id"] for r in mine] == [receipt["report_id"]]


def test_multipart_report_with_a_portrait_photo_that_must_not_come_out_sideways(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
) -> None:
    client = phone("demo-chief-3")
    taken = datetime.now(tz=SHANGHAI_TIME_ZONE) - timedelta(minutes=5)
    portrait = good_jpeg(orientation=6, gps=(spot.lon, spot.lat), taken_at=taken)

    response = multipart(client, report_body(spot), [portrait], key=new_key())

    assert response.status_code == 201, response.text
    [item] = response.json()["photos"]
    photo = item["photo"]
    assert (photo["width"], photo["height"]) == (300, 400)
    assert abs(photo["exif_lon"] - spot.lon) < 1e-5
    assert item["exif_distance_m"] < 5
    assert 0 < item["exif_age_hours"] < 0.2
    assert not item["taken_far_away"]
    assert not item["taken_long_before"]

    display = client.get(photo["display_url"])
    assert display.status_code == 200
    assert display.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(display.content))
    assert shown.size == (300, 400)
    assert shown.getpixel((150, 20))[0] > 200  # the red half is on top: turned upright
    assert dict(shown.getexif()) == {}  # no location, no metadata at all
    thumb = Image.open(io.BytesIO(client.get(photo["thumbnail_url"]).content))
    assert max(thumb.size) == 320
    assert dict(thumb.getexif()) == {}
    original = client.get(photo["original_url"])
    assert original.content == portrait  # the evidence, EXIF and all

    # Only those who may see the report get the photo.
    dispatcher = client.get(photo["original_url"], headers=as_user("demo-dispatcher"))
    assert dispatcher.status_code == 200
    # Had the report been in the next street, demo-chief-2 (文博路街道) would not see it.
    session.execute(update(PhotoUse).values(jurisdiction_path="/410199/410199002/"))
    other = client.get(photo["original_url"], headers=as_user("demo-chief-2"))
    assert (other.status_code, other.json()["code"]) == (404, "not_found")


def test_gcj02_points_are_converted_and_both_kept(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg, session: Session
) -> None:
    client = phone("demo-chief-3")
    glon, glat = wgs84_to_gcj02(spot.lon, spot.lat)
    body = report_body(spot, lon=glon, lat=glat, coordinate_system="gcj02")

    receipt = multipart(client, body, [good_jpeg()]).json()

    assert abs(receipt["lon"] - spot.lon) < 1e-6
    assert abs(receipt["lat"] - spot.lat) < 1e-6
    assert receipt["segment"]["code"] == spot.segment_code
    detail = client.get(f"/api/v1/reports/{receipt['report_id']}").json()
    assert (detail["input_lon"], detail["input_lat"]) == (glon, glat)
    assert detail["coordinate_system"] == "gcj02"


def test_a_photo_from_elsewhere_or_days_ago_is_flagged_not_refused(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    client = phone("demo-chief-3")
    far_old = good_jpeg(
        gps=(spot.lon + 0.022, spot.lat),  # about 2 km east
        taken_at=datetime.now(tz=SHANGHAI_TIME_ZONE) - timedelta(days=3),
    )

    response = multipart(client, report_body(spot), [far_old])

    assert response.status_code == 201
    [item] = response.json()["photos"]
    assert 1900 < item["exif_distance_m"] < 2100
    assert 71 < item["exif_age_hours"] < 73
    assert item["taken_far_away"]
    assert item["taken_long_before"]


def test_a_second_report_of_the_same_problem_joins_the_open_case(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = phone("demo-chief-3")
    first = multipart(chief, report_body(spot), [good_jpeg()]).json()

    lon, lat = spot.moved(10)
    nearby = chief.get(
        "/api/v1/cases/nearby",
        params={"category": "roads.surface", "lon": lon, "lat": lat},
        headers=as_user("demo-patroller"),
    ).json()
    assert [c["number"] for c in nearby] == [first["case_number"]]
    assert 9 < nearby[0]["distance_m"] < 11
    assert nearby[0]["thumbnail_url"].endswith("/thumbnail")

    second = multipart(chief, report_body(spot, lon=lon, lat=lat), [good_jpeg()], key=new_key())
    assert second.status_code == 201
    joined = second.json()
    assert (joined["case_number"], joined["duplicate"]) == (first["case_number"], True)
    detail = chief.get(f"/api/v1/reports/{joined['report_id']}").json()
    kinds = [e["kind"] for e in detail["history"]]
    assert kinds == ["reported", "duplicate_reported"]
    assert detail["history"][1]["photo_ids"] == [joined["photos"][0]["photo"]["id"]]

    other_problem = multipart(
        chief, report_body(spot, category_code="clean.street_cleaning"), [good_jpeg()]
    ).json()
    assert other_problem["case_number"] != first["case_number"]
    assert other_problem["duplicate"] is False


def test_fixed_on_the_spot_goes_straight_to_verification(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    client = phone("demo-chief-3")
    body = report_body(spot, category_code="clean.street_cleaning", fixed_on_spot=True)

    refused = multipart(client, body, [good_jpeg()])
    assert (refused.status_code, refused.json()["code"]) == (422, "after_photo_required")

    response = multipart(client, body, [good_jpeg()], after=[good_jpeg()])
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["case_status"] == "awaiting_verification"
    assert [p["role"] for p in receipt["photos"]] == ["before", "after"]
    history = client.get(f"/api/v1/reports/{receipt['report_id']}").json()["history"]
    assert [(e["kind"], e["to_status"]) for e in history] == [
        ("reported", None),
        ("fixed_on_spot", "awaiting_verification"),
    ]


def test_my_reports_newest_first_page_by_page(
    phone: Callable[[str], TestClient], as_user: Headers, spot: Spot, good_jpeg: Jpeg
) -> None:
    client = phone("demo-chief-3")
    ids = [
        multipart(client, report_body(spot, category_code=c), [good_jpeg()]).json()["report_id"]
        for c in ("roads.surface", "clean.flyers", "greenery.road_greenery")
    ]
    first = client.get("/api/v1/reports/mine", params={"limit": 2}).json()
    assert [r["report_id"] for r in first["items"]] == ids[::-1][:2]
    rest = client.get(
        "/api/v1/reports/mine", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [r["report_id"] for r in rest["items"]] == ids[:1]
    assert rest["next_cursor"] is None
    assert first["items"][0]["thumbnail_url"].endswith("/thumbnail")
    # Another chief has no reports, and cannot read these outside their street.
    assert client.get("/api/v1/reports/mine", headers=as_user("demo-chief-1")).json()["items"] == []
    assert (
        client.get(f"/api/v1/reports/{ids[0]}", headers=as_user("demo-chief-2")).status_code == 200
    )


def test_the_offline_queue_is_safe_to_resend_whole(
    phone: Callable[[str], TestClient],
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    client = phone("demo-chief-3")
    photo = upload(client, good_jpeg())
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    queue = {
        "items": [
            {
                "idempotency_key": new_key(),
                "report": report_body(
                    spot, device_time=yesterday, photos=[{"photo_id": photo["id"]}]
                ),
            },
            {
                "idempotency_key": new_key(),
                "report": report_body(spot, category_code="roads.nope"),
            },
            {"idempotency_key": new_key(), "report": {"description": "没有类别和位置"}},
            {
                "idempotency_key": new_key(),
                "report": report_body(
                    spot, category_code="civility.public_behaviour", description="有人随地吐痰"
                ),
            },
        ]
    }

    first = client.post("/api/v1/reports/batch", json=queue).json()["items"]
    assert [i["status"] for i in first] == [201, 422, 422, 201]
    assert first[1]["problem"]["code"] == "unknown_category"
    assert first[2]["problem"]["code"] == "validation_failed"
    assert first[2]["problem"]["errors"][0]["loc"][0] == "report"
    before = stored(session, settings)

    again = client.post("/api/v1/reports/batch", json=queue).json()["items"]

    assert [i["status"] for i in again] == [200, 422, 422, 200]
    assert again[0]["receipt"] == first[0]["receipt"]
    assert stored(session, settings) == before
    detail = client.get(f"/api/v1/reports/{first[0]['receipt']['report_id']}").json()
    assert datetime.fromisoformat(detail["device_time"]) < datetime.fromisoformat(
        detail["received_at"]
    )


def test_unused_uploads_are_swept_away(
    phone: Callable[[str], TestClient], good_jpeg: Jpeg, session: Session, settings: Settings
) -> None:
    client = phone("demo-chief-3")
    photo = upload(client, good_jpeg())
    row = session.get(Photo, photo["id"])
    assert row is not None
    files = [settings.media_dir / k for k in (row.original_key, row.display_key, row.thumbnail_key)]
    assert all(f.exists() for f in files)

    assert sweep_orphans(session, settings) == 0  # too recent: the report may still come
    row.uploaded_at = utcnow() - timedelta(hours=settings.photo_orphan_hours + 1)
    session.commit()
    assert sweep_orphans(session, settings) == 1

    assert session.scalar(select(Photo).where(Photo.id == photo["id"])) is None
    assert not any(f.exists() for f in files)
