"""Copying photos between stores, each copy checked against its content address.

Used to move a deployment's photos from its directory to a bucket and back
(`roadchief photos move`), and by backups. A key's name is the SHA-256 of its bytes, so a
copy is verified by reading it back from the target and hashing it; a key already at the
target with that checksum is skipped, which makes an interrupted run resumable.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.media.models import Photo
from app.media.storage import CHUNK, MediaStorage, key_sha256, sha256_of_stream

if TYPE_CHECKING:
    from app.settings import Settings


class ChecksumMismatch(Exception):
    """Bytes that are not what their key names."""

    def __init__(self, key: str, where: str, found: str) -> None:
        super().__init__(f"{key}: {where} holds bytes of SHA-256 {found}")
        self.key = key


def holds(storage: MediaStorage, key: str) -> bool:
    """The store has `key` with the bytes its name promises: by the checksum the store
    recorded when it wrote the object, else by reading it."""
    found = storage.stat(key)
    if found is None:
        return False
    want = key_sha256(key)
    if found.sha256 is not None:
        return found.sha256 == want
    return verify(storage, key) == want


def verify(storage: MediaStorage, key: str) -> str:
    """The SHA-256 of the bytes stored under `key`, read in full."""
    with storage.open(key) as stream:
        return sha256_of_stream(stream)[0]


def copy_photo(
    source: MediaStorage, target: MediaStorage, key: str
) -> Literal["copied", "skipped"]:
    """Copy one key unless the target has it already; raises ChecksumMismatch when the
    source's bytes, or the copy read back, are not what the key names."""
    want = key_sha256(key)
    if holds(target, key):
        return "skipped"
    digest = hashlib.sha256()
    with (
        source.open(key) as stream,
        tempfile.NamedTemporaryFile(dir=target.temp_dir(), delete=False) as out,
    ):
        staged = Path(out.name)
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    try:
        if digest.hexdigest() != want:
            raise ChecksumMismatch(key, "the source", digest.hexdigest())
        if target.stat(key) is not None:
            # Whatever is under the key is not these bytes (`holds` said so): replace it.
            target.delete(key)
        target.put_file(key, staged)
    finally:
        staged.unlink(missing_ok=True)
    copied = verify(target, key)
    if copied != want:
        target.delete(key)
        raise ChecksumMismatch(key, "the copy", copied)
    return "copied"


@dataclass
class CopyResult:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: Keys the database refers to that the target does not hold after the copy.
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing

    def summary(self) -> str:
        return (
            f"{len(self.copied)} copied, {len(self.skipped)} already there, "
            f"{len(self.failed)} failed, {len(self.missing)} referenced but missing"
        )


def copy_photos(
    source: MediaStorage,
    target: MediaStorage,
    keys: Iterable[str],
    *,
    jobs: int = 8,
    progress: Callable[[str, str], None] | None = None,
) -> CopyResult:
    """Copy `keys` from `source` to `target`, `jobs` at a time (the stores' latency, not
    the CPU, is what limits a copy); a failure is recorded and the rest go on."""
    result = CopyResult()

    def one(key: str) -> tuple[str, str]:
        try:
            return key, copy_photo(source, target, key)
        except (ChecksumMismatch, OSError) as exc:
            return key, f"failed: {exc}"
        except Exception as exc:  # a store's client error: keep going, report it
            return key, f"failed: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for key, outcome in pool.map(one, keys):
            if outcome == "copied":
                result.copied.append(key)
            elif outcome == "skipped":
                result.skipped.append(key)
            else:
                result.failed[key] = outcome
            if progress is not None:
                progress(key, outcome)
    return result


def referenced_keys(session: Session) -> set[str]:
    """Every key a photo row refers to: what a store must hold."""
    keys: set[str] = set()
    for row in session.execute(select(Photo.original_key, Photo.display_key, Photo.thumbnail_key)):
        keys.update(row)
    return keys


def move_photos(
    session: Session, settings: Settings, to: Literal["s3", "local"], *, jobs: int = 8
) -> CopyResult:
    """Copy every photo of the other store to the `to` store (the settings name both: the
    directory and the bucket), then check that every key the database refers to is
    there. Nothing is deleted at the source."""
    from app.media.service import media_storage

    source = media_storage(
        settings.model_copy(update={"photo_store": "local" if to == "s3" else "s3"})
    )
    target = media_storage(settings.model_copy(update={"photo_store": to}))
    result = copy_photos(source, target, source.keys(), jobs=jobs)
    done = set(result.copied) | set(result.skipped)
    result.missing = sorted(k for k in referenced_keys(session) - done if not target.exists(k))
    return result
