"""Photos in an S3-compatible bucket (a real S3 API on loopback): a report's photos are
stored there content-addressed, fetched by presigned URL or through the server, swept when
nobody uses them, and a deployment's photos move from its directory to the bucket and back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import SettingsError
from app.core.database import Database, utcnow
from app.media.models import Photo
from app.media.service import media_storage, sweep_orphans
from app.media.storage import content_key, key_sha256
from app.media.transfer import move_photos
from app.settings import Settings, get_settings
from tests.support import Jpeg
from tests.support.photos import jpeg
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, stored, upload
from tests.support.s3 import bucket_keys, s3_client

Phone = Callable[..., TestClient]


def keys_of(photo: Photo) -> set[str]:
    return {photo.original_key, photo.display_key, photo.thumbnail_key}


def photo_row(session: Session, photo_id: int) -> Photo:
    row = session.get(Photo, photo_id)
    assert row is not None
    return row


def test_a_reports_photos_are_kept_in_the_bucket_and_fetched_by_presigned_url(
    s3_phone: Phone,
    s3_settings: Settings,
    session: Session,
    spot: Spot,
    good_jpeg: Jpeg,
    outsider: str,
) -> None:
    chief = s3_phone("demo-chief-3")
    picture = good_jpeg()
    before_local = stored(session, s3_settings)["files"]
    receipt = multipart(chief, report_body(spot), [picture])
    assert receipt.status_code == 201, receipt.text
    report = chief.get(f"/api/v1/reports/{receipt.json()['report_id']}").json()
    [photo] = [p["photo"] for p in report["photos"]]
    row = photo_row(session, photo["id"])

    # In the bucket, under their content addresses, each with its checksum; not on disk.
    assert keys_of(row) <= bucket_keys(s3_settings.s3_endpoint_url or "", s3_settings.s3_bucket)
    head = s3_client(s3_settings.s3_endpoint_url or "").head_object(
        Bucket=s3_settings.s3_bucket, Key=row.original_key
    )
    assert head["Metadata"]["sha256"] == hashlib.sha256(picture).hexdigest()
    assert head["ContentType"] == "image/jpeg"
    assert stored(session, s3_settings)["files"] == before_local
    assert stored(session, s3_settings)["tmp"] == []

    # The API answers with a short-lived presigned URL; the bytes come from the store.
    answer = chief.get(photo["original_url"], follow_redirects=False)
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(s3_settings.s3_endpoint_url or "")
    assert "X-Amz-Expires=300" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == picture
    thumbnail = httpx.get(
        chief.get(photo["thumbnail_url"], follow_redirects=False).headers["location"]
    )
    assert hashlib.sha256(thumbnail.content).hexdigest() == key_sha256(row.thumbnail_key)

    # Only those who may see the photo get a URL at all.
    neighbour = s3_phone(outsider)
    assert neighbour.get(photo["original_url"], follow_redirects=False).status_code == 404
    anonymous = s3_phone("")
    assert anonymous.get(photo["original_url"], follow_redirects=False).status_code == 401


def test_photos_in_the_bucket_can_be_passed_through_the_server(
    s3_phone: Phone, session: Session, good_jpeg: Jpeg
) -> None:
    chief = s3_phone("demo-chief-3", photo_delivery="proxy")
    picture = good_jpeg()
    photo = upload(chief, picture)
    answer = chief.get(photo["original_url"], follow_redirects=False)
    assert answer.status_code == 200
    assert answer.content == picture
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["etag"] == f'"{hashlib.sha256(picture).hexdigest()}"'
    assert int(answer.headers["content-length"]) == len(picture)


def test_a_refused_report_leaves_nothing_in_the_bucket(
    s3_phone: Phone, s3_settings: Settings, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = s3_phone("demo-chief-3")
    endpoint, name = s3_settings.s3_endpoint_url or "", s3_settings.s3_bucket or ""
    body = json.dumps(report_body(spot, duplicate_of="2099"), ensure_ascii=False)
    answer = chief.post(
        "/api/v1/reports/multipart",
        data={"report": body},
        files=[("photos", ("p.jpg", good_jpeg(), "image/jpeg"))],
    )
    assert answer.status_code == 422
    assert bucket_keys(endpoint, name) == set()


def test_an_unused_upload_is_swept_from_the_bucket(
    s3_phone: Phone, s3_settings: Settings, session: Session, spot: Spot, good_jpeg: Jpeg
) -> None:
    chief = s3_phone("demo-chief-3")
    endpoint, name = s3_settings.s3_endpoint_url or "", s3_settings.s3_bucket or ""
    abandoned = photo_row(session, upload(chief, good_jpeg())["id"])
    used = photo_row(session, upload(chief, good_jpeg())["id"])
    receipt = chief.post("/api/v1/reports", json=report_body(spot, photos=[{"photo_id": used.id}]))
    assert receipt.status_code == 201, receipt.text
    assert keys_of(abandoned) | keys_of(used) == bucket_keys(endpoint, name)

    assert sweep_orphans(session, s3_settings) == 0  # too recent: the report may still come
    for row in (abandoned, used):
        row.uploaded_at = utcnow() - timedelta(hours=s3_settings.photo_orphan_hours + 1)
    session.commit()
    assert sweep_orphans(session, s3_settings) == 1

    assert session.get(Photo, abandoned.id) is None
    assert bucket_keys(endpoint, name) == keys_of(used)


def test_a_deployments_photos_move_to_the_bucket_and_back_resuming_where_they_stopped(
    phone: Callable[[str], TestClient],
    settings: Settings,
    s3_settings: Settings,
    session: Session,
    spot: Spot,
    good_jpeg: Jpeg,
    tmp_path: Path,
) -> None:
    # A deployment on its directory: two reports' photos (the suite's directory holds
    # other tests' files too; all of them move).
    chief = phone("demo-chief-3")
    photos = [upload(chief, good_jpeg()) for _ in range(2)]
    for photo in photos:
        assert (
            chief.post(
                "/api/v1/reports", json=report_body(spot, photos=[{"photo_id": photo["id"]}])
            ).status_code
            == 201
        )
    local = media_storage(settings)
    keys = set(local.keys())
    wanted = set().union(*(keys_of(photo_row(session, p["id"])) for p in photos))
    assert wanted <= keys
    endpoint, name = s3_settings.s3_endpoint_url or "", s3_settings.s3_bucket or ""

    first = move_photos(session, s3_settings, "s3", jobs=4)
    assert first.ok, first.failed
    assert (set(first.copied), first.skipped) == (keys, [])
    assert bucket_keys(endpoint, name) == keys

    # Interrupted: one object never arrived, another is damaged. The run resumes.
    lost, damaged = sorted(wanted)[:2]
    client = s3_client(endpoint)
    client.delete_object(Bucket=name, Key=lost)
    client.put_object(Bucket=name, Key=damaged, Body=b"half a photo")
    again = move_photos(session, s3_settings, "s3")
    assert again.ok
    assert sorted(again.copied) == sorted([lost, damaged])
    assert len(again.skipped) == len(keys) - 2
    fixed = client.get_object(Bucket=name, Key=damaged)["Body"].read()
    assert hashlib.sha256(fixed).hexdigest() == key_sha256(damaged)

    # Back to a fresh directory: every file arrives whole and the app serves it from there.
    fresh = s3_settings.model_copy(update={"media_dir": tmp_path / "media"})
    back = move_photos(session, fresh, "local")
    assert back.ok
    assert set(back.copied) == keys
    for key in keys:
        data = (tmp_path / "media" / key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == key_sha256(key)
    assert move_photos(session, fresh, "local").copied == []  # nothing left to do

    # A file damaged at the source is refused, reported, and not copied.
    broken = sorted(wanted)[2]
    (tmp_path / "media" / broken).write_bytes(b"not the photo")
    client.delete_object(Bucket=name, Key=broken)
    refused = move_photos(session, fresh.model_copy(update={"s3_bucket": name}), "s3")
    assert not refused.ok
    assert list(refused.failed) == [broken]
    assert broken not in bucket_keys(endpoint, name)
    assert refused.missing == [broken]


def test_the_move_command_copies_once_and_says_so(
    empty_database: Database, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    picture = jpeg(seed=256 * 77)
    key = content_key(hashlib.sha256(picture).hexdigest(), "jpg")
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(picture)
    env = {
        "ROADCHIEF_MEDIA_DIR": str(tmp_path),
        "ROADCHIEF_S3_ENDPOINT_URL": s3_endpoint,
        "ROADCHIEF_S3_BUCKET": bucket,
        "ROADCHIEF_S3_ADDRESSING_STYLE": "path",
    }

    def roadchief(*args: str, **more: str | None) -> Any:
        get_settings.cache_clear()
        return CliRunner().invoke(cli, list(args), env={**env, **more})

    first = roadchief("photos", "move", "--to", "s3")
    assert first.exit_code == 0, first.output
    assert "local → s3: 1 copied, 0 already there, 0 failed" in first.output
    assert bucket_keys(s3_endpoint, bucket) == {key}
    again = roadchief("photos", "move", "--to", "s3")
    assert "0 copied, 1 already there" in again.output
    nowhere = roadchief("photos", "move", "--to", "s3", ROADCHIEF_S3_BUCKET=None)
    assert nowhere.exit_code == 2


def test_a_bucket_store_needs_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADCHIEF_PHOTO_STORE", "s3")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="ROADCHIEF_S3_BUCKET"):
        get_settings()
    monkeypatch.setenv("ROADCHIEF_S3_BUCKET", "Not_A_Bucket")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="ROADCHIEF_S3_BUCKET"):
        get_settings()
    get_settings.cache_clear()


def test_the_store_says_whether_it_can_be_used(
    s3_settings: Settings, settings: Settings, s3_endpoint: str
) -> None:
    """What a readiness probe asks of the photo store."""
    media_storage(s3_settings).check()
    media_storage(settings).check()
    gone = s3_settings.model_copy(update={"s3_bucket": "roadchief-no-such-bucket"})
    with pytest.raises(ClientError):
        media_storage(gone).check()
    elsewhere = s3_settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises((ClientError, BotoCoreError)):
        media_storage(elsewhere).check()
