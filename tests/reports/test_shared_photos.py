"""The same picture sent by two people (a photo forwarded in a chat group): each upload is
its uploader's own photo, the stored file is shared, and it goes only when no photo of
anyone uses it any more."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.core.database import utcnow
from app.media.models import Photo
from app.media.service import sweep_orphans
from app.settings import Settings
from tests.support import Headers, Jpeg
from tests.support.cases import Loop, dispatched, loop  # noqa: F401
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, stored, upload


def row_of(session: Session, photo_id: int) -> Photo:
    row = session.get(Photo, photo_id)
    assert row is not None
    return row


def files_of(session: Session, settings: Settings, photo_id: int) -> list[Path]:
    row = row_of(session, photo_id)
    return [settings.media_dir / k for k in (row.original_key, row.display_key, row.thumbnail_key)]


def failing_report(
    client: TestClient, headers: dict[str, str], spot: Spot, picture: bytes
) -> Response:
    """A multipart report refused after its photo was stored (no such case to join), so
    its transaction is rolled back and its files undone."""
    body = json.dumps(report_body(spot, duplicate_of="2099"), ensure_ascii=False)
    return client.post("/api/v1/reports/multipart", headers=headers, data={"report": body},
                       files=[("photos", ("p.jpg", picture, "image/jpeg"))])  # fmt: skip


def user_id(session: Session, username: str) -> int | None:
    return session.scalar(select(User.id).where(User.username == username))


def test_a_forwarded_photo_is_the_second_uploaders_own(
    dispatched: Loop,  # noqa: F811 - the fixture imported above
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
    outsider: str,
) -> None:
    client, picture = dispatched.client, good_jpeg()
    chief, patroller, staff = (as_user(u) for u in ("demo-chief-3", "demo-patroller", "demo-staff"))
    first = upload(client, picture, headers=chief)
    before = stored(session, settings)

    forwarded = upload(client, picture, headers=patroller)
    again = upload(client, picture, headers=chief)  # a retry by the first uploader

    assert forwarded["id"] != first["id"]
    assert again["id"] == first["id"]
    assert forwarded["sha256"] == first["sha256"]
    assert (forwarded["width"], forwarded["taken_at"]) == (first["width"], first["taken_at"])
    owners = {row_of(session, p["id"]).uploaded_by_user_id for p in (first, forwarded)}
    assert owners == {user_id(session, "demo-chief-3"), user_id(session, "demo-patroller")}
    after = stored(session, settings)
    assert after["files"] == before["files"]  # one stored copy
    assert files_of(session, settings, forwarded["id"]) == files_of(session, settings, first["id"])
    # Each may use their own, in a report and in a case step.

    def report_with(photo_id: int) -> Response:
        body = report_body(spot, category_code="clean.illegal_ads", photos=[{"photo_id": photo_id}])
        return client.post("/api/v1/reports", headers=patroller, json=body)

    report = report_with(forwarded["id"])
    assert report.status_code == 201, report.text
    theirs = upload(client, picture, headers=staff)
    assert theirs["id"] not in (first["id"], forwarded["id"])
    dispatched.ok("demo-staff", "sign_for")
    fed = dispatched.ok("demo-staff", "feed_back", note="已处置", photo_ids=[theirs["id"]])
    assert fed["status"]
    # And nobody uses another's through the shared bytes.
    other = report_with(first["id"])
    assert (other.status_code, other.json()["code"]) == (422, "unknown_photo")
    stranger = as_user(outsider)  # a chief of the next street with the same picture
    own = upload(client, picture, headers=stranger)
    assert client.get(f"/api/v1/photos/{own['id']}", headers=stranger).status_code == 200
    for photo_id in (first["id"], forwarded["id"]):
        seen = client.get(f"/api/v1/photos/{photo_id}/original", headers=stranger)
        assert seen.status_code == 404


def test_a_shared_file_goes_only_when_no_photo_uses_it(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    client, picture = phone("demo-chief-3"), good_jpeg()
    patroller = as_user("demo-patroller")
    used = multipart(client, report_body(spot), [picture])
    assert used.status_code == 201, used.text
    mine = used.json()["photos"][0]["photo"]["id"]
    files = files_of(session, settings, mine)

    # The patroller's report with the same picture fails: nothing of the chief's goes.
    before = stored(session, settings)
    failed = failing_report(client, patroller, spot, picture)
    assert (failed.status_code, failed.json()["code"]) == (422, "duplicate_case_invalid")
    assert stored(session, settings) == before
    assert all(f.exists() for f in files)

    # The patroller's own upload, never used, is swept; the chief's file stays.
    theirs = upload(client, picture, headers=patroller)["id"]
    assert theirs != mine
    aged = utcnow() - timedelta(hours=settings.photo_orphan_hours + 1)
    for row in session.scalars(select(Photo).where(Photo.id.in_([mine, theirs]))):
        row.uploaded_at = aged
    session.commit()
    assert sweep_orphans(session, settings) == 1
    assert session.get(Photo, theirs) is None
    assert all(f.exists() for f in files)
    assert client.get(f"/api/v1/photos/{mine}/original").content == picture

    # Two unused uploads of one picture: the file goes with the last of them.
    other = good_jpeg()
    a, b = (
        upload(client, other, headers=as_user(u))["id"] for u in ("demo-chief-3", "demo-patroller")
    )
    shared = files_of(session, settings, a)
    session.get(Photo, a).uploaded_at = aged  # type: ignore[union-attr]
    session.commit()
    assert sweep_orphans(session, settings) == 1
    assert all(f.exists() for f in shared)
    session.get(Photo, b).uploaded_at = aged  # type: ignore[union-attr]
    session.commit()
    assert sweep_orphans(session, settings) == 1
    assert not any(f.exists() for f in shared)


def test_a_failed_report_that_restored_a_lost_file_keeps_it_for_the_photo_using_it(
    phone: Callable[[str], TestClient],
    as_user: Headers,
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    """When the stored copy is gone (a disk restored from an old backup), the next upload
    of the picture derives it again; if that request then fails, its undo must not delete
    files another photo row refers to."""
    client, picture = phone("demo-chief-3"), good_jpeg()
    mine = upload(client, picture)["id"]
    files = files_of(session, settings, mine)
    for f in files:
        f.unlink()

    failed = failing_report(client, as_user("demo-patroller"), spot, picture)

    assert (failed.status_code, failed.json()["code"]) == (422, "duplicate_case_invalid")
    assert all(f.exists() for f in files)
    assert client.get(f"/api/v1/photos/{mine}/display").status_code == 200
