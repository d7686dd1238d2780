"""Photo intake and delivery: stream to disk, check with Pillow, store content-addressed.

A photo is stored in three steps that can each fail: stage (stream the upload to a
temporary file while hashing it, within the byte limit), process (Pillow; files renamed
into place, before any database work), store (a `Photo` row added to the caller's
transaction). `PendingFiles`
remembers the files written, so a caller whose transaction fails removes them again:
nothing is left behind by a refused request. Each upload is its uploader's own row; rows
of the same bytes share the files, and a file is deleted only when no row refers to it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from app.access.rules import Principal
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.media.images import FORMATS, PhotoFacts, PhotoTooLarge, process_photo
from app.media.models import Photo, PhotoUse
from app.media.schemas import PhotoOut
from app.media.storage import (
    LocalMediaStorage,
    MediaStorage,
    content_key,
    media_type_of,
    s3_storage,
)

if TYPE_CHECKING:
    from app.settings import Settings

Variant = Literal["original", "display", "thumbnail"]
CHUNK = 1024 * 1024


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def processing_slot(settings: Settings) -> threading.BoundedSemaphore:
    """At most `photo_processing_slots` photos are decoded at once in this process.

    Decoding is CPU-bound, so more at once than there are cores only adds memory: ten
    concurrent uploads would hold ten decoded photos. Requests wait here instead.
    """
    with _slots_lock:
        slot = _slots.get(settings.photo_processing_slots)
        if slot is None:
            slot = _slots[settings.photo_processing_slots] = threading.BoundedSemaphore(
                settings.photo_processing_slots
            )
        return slot


_stores: dict[tuple[object, ...], MediaStorage] = {}


def media_storage(settings: Settings) -> MediaStorage:
    """The photo store the settings name (ROADCHIEF_PHOTO_STORE). One per configuration
    and process: a boto3 client is costly to make, and safe to share between threads."""
    if settings.photo_store == "local":
        return LocalMediaStorage(settings.media_dir)
    config = (
        settings.media_dir,
        settings.s3_endpoint_url,
        settings.s3_public_endpoint_url,
        settings.s3_bucket,
        settings.s3_region,
        settings.s3_prefix,
        settings.s3_addressing_style,
        settings.photo_url_seconds,
    )
    with _slots_lock:
        store = _stores.get(config)
        if store is None:
            store = _stores[config] = s3_storage(settings)
        return store


@dataclass(frozen=True)
class StagedUpload:
    """An upload streamed to a temporary file, with its hash."""

    path: Path
    sha256: str
    size: int


def stage_upload(stream: BinaryIO, storage: MediaStorage, max_bytes: int) -> StagedUpload:
    """Copy `stream` to a temporary file in chunks (never whole in memory), hashing it."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=storage.temp_dir(), delete=False) as out:
        path = Path(out.name)
        try:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PhotoTooLarge(
                        f"单张照片不能超过 {max_bytes // (1024 * 1024)} MB",
                        max_bytes=max_bytes,
                    )
                digest.update(chunk)
                out.write(chunk)
        except BaseException:
            out.close()
            path.unlink(missing_ok=True)
            raise
    return StagedUpload(path, digest.hexdigest(), size)


def discard(staged: Iterable[StagedUpload]) -> None:
    for s in staged:
        s.path.unlink(missing_ok=True)


@dataclass
class PendingFiles:
    """Files written for a transaction that has not committed yet."""

    storage: MediaStorage
    keys: list[str] = field(default_factory=list)

    def put(self, key: str, source: Path) -> None:
        if self.storage.put_file(key, source):
            self.keys.append(key)

    def undo(self, session: Session) -> None:
        """After a rollback: remove the files written, unless a committed row (another
        request storing the same bytes meanwhile) now refers to them."""
        if not self.keys:
            return
        used = set()
        for column in (Photo.original_key, Photo.display_key, Photo.thumbnail_key):
            used |= set(session.scalars(select(column).where(column.in_(self.keys))))
        for key in self.keys:
            if key not in used:
                self.storage.delete(key)
        self.keys.clear()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ProcessedUpload:
    """An upload checked and derived, its files in storage; not yet a `Photo` row."""

    sha256: str
    size: int
    facts: PhotoFacts
    original_key: str
    display_key: str
    thumbnail_key: str


def process_upload(
    settings: Settings, staged: StagedUpload, pending: PendingFiles
) -> ProcessedUpload:
    """Check and derive a staged upload with Pillow and put its files in storage; the
    staged file is consumed. Done before the request touches the database: on SQLite a
    writing transaction holds the one write lock from its first statement, and other
    writers must not wait on Pillow meanwhile."""
    workdir = Path(tempfile.mkdtemp(dir=pending.storage.temp_dir()))
    try:
        with processing_slot(settings):
            facts = process_photo(
                staged.path,
                workdir,
                max_pixels=settings.photo_max_pixels,
                max_jpeg_pixels=settings.photo_max_jpeg_pixels,
                display_px=settings.photo_display_px,
                thumbnail_px=settings.photo_thumbnail_px,
                zone=settings.zone,
            )
        original_key = content_key(staged.sha256, FORMATS[facts.format])
        display_key = content_key(_sha256_of(facts.display.path), "jpg")
        thumbnail_key = content_key(_sha256_of(facts.thumbnail.path), "jpg")
        pending.put(original_key, staged.path)
        pending.put(display_key, facts.display.path)
        pending.put(thumbnail_key, facts.thumbnail.path)
    finally:
        staged.path.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return ProcessedUpload(
        staged.sha256, staged.size, facts, original_key, display_key, thumbnail_key
    )


def store_photo(
    session: Session, principal: Principal, upload: ProcessedUpload, pending: PendingFiles
) -> Photo:
    """The caller's `Photo` of these bytes: the one they uploaded before (a retry), or a
    new row of their own (added to the session; the caller commits, or rolls back and
    calls `pending.undo`).

    Content addressing stays below ownership: rows of the same bytes share one stored copy
    (the same keys), but each uploader's row is their own, so a photo forwarded to a
    colleague and uploaded again is theirs to use."""
    mine = principal.user_id
    own = (
        session.scalar(
            select(Photo)
            .where(Photo.sha256 == upload.sha256, Photo.uploaded_by_user_id == mine)
            .order_by(Photo.id)
            .limit(1)
        )
        if mine is not None
        else None
    )
    if own is not None and pending.storage.exists(own.original_key):
        return own
    photo = own or Photo(sha256=upload.sha256, uploaded_by_user_id=mine)
    facts = upload.facts
    photo.format = facts.format
    photo.byte_size = upload.size
    photo.width, photo.height = facts.width, facts.height
    photo.original_key, photo.display_key, photo.thumbnail_key = (
        upload.original_key,
        upload.display_key,
        upload.thumbnail_key,
    )
    photo.taken_at = facts.taken_at
    photo.exif_lon, photo.exif_lat = facts.lon, facts.lat
    session.add(photo)
    session.flush()
    return photo


def upload_photo(
    session: Session, settings: Settings, principal: Principal, stream: BinaryIO
) -> PhotoOut:
    """The first step of the two-step flow: one photo, stored now, used by a report later."""
    storage = media_storage(settings)
    staged = stage_upload(stream, storage, settings.photo_max_bytes)
    pending = PendingFiles(storage)
    try:
        photo = store_photo(session, principal, process_upload(settings, staged, pending), pending)
        session.commit()
    except BaseException:
        session.rollback()
        pending.undo(session)
        raise
    return photo_out(photo, settings)


def use_photo(session: Session, photo: Photo, used_by: str, jurisdiction_path: str) -> None:
    """Record that `used_by` (in `jurisdiction_path`) uses the photo as evidence."""
    session.add(PhotoUse(photo_id=photo.id, used_by=used_by, jurisdiction_path=jurisdiction_path))


def photo_url(photo_id: int, variant: Variant) -> str:
    return f"/api/v1/photos/{photo_id}/{variant}"


def thumbnail_url(photo_id: int) -> str:
    return photo_url(photo_id, "thumbnail")


def photo_out(photo: Photo, settings: Settings) -> PhotoOut:
    return PhotoOut(
        id=photo.id,
        sha256=photo.sha256,
        format=photo.format,
        byte_size=photo.byte_size,
        width=photo.width,
        height=photo.height,
        taken_at=photo.taken_at,
        exif_lon=photo.exif_lon,
        exif_lat=photo.exif_lat,
        original_url=photo_url(photo.id, "original"),
        display_url=photo_url(photo.id, "display"),
        thumbnail_url=thumbnail_url(photo.id),
    )


class UnknownPhoto(Problem):
    code = "unknown_photo"
    status = 422
    title = "照片不存在或无权使用"


def usable_photos(session: Session, principal: Principal, photo_ids: Sequence[int]) -> list[Photo]:
    """Photos the caller may attach as evidence (their own, or ones they may see)."""
    out = []
    for i, photo_id in enumerate(photo_ids):
        try:
            out.append(visible_photo(session, principal, photo_id))
        except NotFound:
            raise UnknownPhoto(
                f"第 {i + 1} 张照片（id {photo_id}）不存在或不是您上传的", photo_id=photo_id
            ) from None
    return out


def visible_photo(session: Session, principal: Principal, photo_id: int) -> Photo:
    """The photo, if the caller uploaded it or may see something that uses it; else 404."""
    photo = session.get(Photo, photo_id)
    if photo is None:
        raise NotFound("照片不存在")
    if principal.user_id is not None and photo.uploaded_by_user_id == principal.user_id:
        return photo
    seen = session.scalar(
        select(
            exists().where(
                PhotoUse.photo_id == photo_id, principal.path_filter(PhotoUse.jurisdiction_path)
            )
        )
    )
    if not seen:
        raise NotFound("照片不存在")
    return photo


@dataclass(frozen=True)
class PhotoFile:
    """Where one variant of a photo is to be had: a local file to send, a presigned URL to
    redirect to, or a stream from the store to pass on (ROADCHIEF_PHOTO_DELIVERY=proxy)."""

    media_type: str
    etag: str
    size: int
    path: Path | None = None
    url: str | None = None
    stream: BinaryIO | None = None


def photo_file(
    session: Session, settings: Settings, principal: Principal, photo_id: int, variant: Variant
) -> PhotoFile:
    """One variant of a photo the caller may see (404 when its file is missing)."""
    photo = visible_photo(session, principal, photo_id)
    key = {
        "original": photo.original_key,
        "display": photo.display_key,
        "thumbnail": photo.thumbnail_key,
    }[variant]
    storage = media_storage(settings)
    etag = key.rsplit("/", 1)[-1].split(".")[0]
    media_type = media_type_of(key)
    path = storage.local_path(key)
    if path is not None:
        if not path.exists():
            raise NotFound("照片文件缺失")
        return PhotoFile(media_type, etag, path.stat().st_size, path=path)
    found = storage.stat(key)
    if found is None:
        raise NotFound("照片文件缺失")
    if settings.photo_delivery == "redirect":
        return PhotoFile(media_type, etag, found.size, url=storage.presigned_url(key))
    return PhotoFile(media_type, etag, found.size, stream=storage.open(key))


def sweep_orphans(session: Session, settings: Settings) -> int:
    """Delete photos no report or case uses, uploaded longer ago than the grace period,
    with their files. Returns how many were removed."""
    cutoff = utcnow() - timedelta(hours=settings.photo_orphan_hours)
    orphans = list(
        session.scalars(
            select(Photo).where(
                Photo.uploaded_at < cutoff,
                ~exists().where(PhotoUse.photo_id == Photo.id),
            )
        )
    )
    keys = [k for p in orphans for k in (p.original_key, p.display_key, p.thumbnail_key)]
    if not orphans:
        return 0
    session.execute(delete(Photo).where(Photo.id.in_([p.id for p in orphans])))
    session.commit()
    storage = media_storage(settings)
    still_used = set()
    for column in (Photo.original_key, Photo.display_key, Photo.thumbnail_key):
        still_used |= set(session.scalars(select(column).where(or_(column.in_(keys)))))
    for key in keys:
        if key not in still_used:
            storage.delete(key)
    return len(orphans)
