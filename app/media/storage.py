"""Where photo files live: an interface, a local directory and an S3-compatible bucket
(对象存储, object storage).

Keys are content addresses ("ab/cd/<sha256>.jpg": the name is the SHA-256 of the bytes), so
writing the same key twice writes the same bytes, a file is never changed once written, and
any copy can be checked against its own name. Uploads are staged in a local temporary
directory whichever store keeps the files (Pillow reads files, and a refused upload must
never reach the store).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from app.settings import Settings

CHUNK = 1024 * 1024
#: "ab/cd/<64 hex>.<ext>": what `content_key` makes; nothing else is a photo in a store.
KEY_PATTERN = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z0-9]{1,8})$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "heic": "image/heif"}


def content_key(sha256: str, extension: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def key_sha256(key: str) -> str:
    """The SHA-256 a key's bytes must have (its name); ValueError for a key not ours."""
    match = KEY_PATTERN.match(key)
    if match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
        raise ValueError(f"not a content address: {key!r}")
    return match.group(3)


def is_content_key(key: str) -> bool:
    try:
        key_sha256(key)
    except ValueError:
        return False
    return True


def media_type_of(key: str) -> str:
    return MEDIA_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")


@dataclass(frozen=True)
class StoredObject:
    """What a store says of one key without reading it: its size, and the SHA-256 it
    recorded when the object was written (None where only reading tells)."""

    size: int
    sha256: str | None


class MediaStorage(Protocol):
    #: "local" or "s3", as ROADCHIEF_PHOTO_STORE names it.
    kind: str

    def temp_dir(self) -> Path:
        """A local directory for staged uploads and downloads in progress."""
        ...

    def put_file(self, key: str, source: Path) -> bool:
        """Move the file `source` in under `key` (or drop it if the key exists: same
        content); True if it was written now."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The bytes under `key`, as a stream (FileNotFoundError if absent)."""
        ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]:
        """Every content-addressed key in the store (temporary files are not keys)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file the web server can send directly, if the storage has one."""
        ...

    def presigned_url(self, key: str) -> str | None:
        """A short-lived URL a client can fetch the bytes from directly, if the store
        gives them."""
        ...

    def check(self) -> None:
        """Raise OSError (or the client's error) if the store cannot be used now."""
        ...


def sha256_of_stream(stream: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class LocalMediaStorage:
    """Files under one directory; writes go to a temporary name and are renamed into place,
    so a reader never sees half a file and a crash leaves no partial one under a key."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def _path(self, key: str) -> Path:
        return self.root / key

    def temp_dir(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp

    def put_file(self, key: str, source: Path) -> bool:
        target = self._path(key)
        if target.exists():
            source.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # Temporary files live under the same root: the rename is atomic.
        os.replace(source, target)
        return True

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def stat(self, key: str) -> StoredObject | None:
        try:
            return StoredObject(self._path(key).stat().st_size, None)
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("??/??/*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and is_content_key(key):
                yield key

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str) -> str | None:
        return None

    def check(self) -> None:
        # Writable where uploads are staged, which is also where files are renamed to.
        with tempfile.NamedTemporaryFile(dir=self.temp_dir()):
            pass


class S3MediaStorage:
    """Objects in one bucket of an S3-compatible store (AWS S3, MinIO, Aliyun OSS, Tencent
    COS...), under an optional prefix, through boto3.

    Objects are written with upload_fileobj, which streams a large file as a multipart
    upload in parts of `multipart_chunksize` bytes, never whole in memory; each carries its
    SHA-256 as metadata so that a copy can be checked without reading it back. A PUT is
    atomic: an object is there whole or not at all, as the local store's rename.
    """

    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        scratch: Path,
        url_seconds: int = 300,
        presign_client: Any = None,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client = client
        self.presign_client = presign_client or client
        self.bucket = bucket
        self.prefix = prefix
        self.scratch = scratch
        self.url_seconds = url_seconds
        # Photos are at most a few tens of MB: one part per 8 MB, four at a time.
        self.transfer = TransferConfig(multipart_chunksize=8 * CHUNK, max_concurrency=4)

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _missing(self, exc: Exception) -> bool:
        error = getattr(exc, "response", {}).get("Error", {})
        return str(error.get("Code")) in ("404", "NoSuchKey", "NotFound")

    def temp_dir(self) -> Path:
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch

    def put_file(self, key: str, source: Path) -> bool:
        if self.exists(key):
            source.unlink(missing_ok=True)
            return False
        # The key is the SHA-256 of the bytes, computed as they were staged: no second read.
        metadata = {"sha256": key_sha256(key)}
        with source.open("rb") as f:
            self.client.upload_fileobj(
                f,
                self.bucket,
                self._name(key),
                ExtraArgs={"ContentType": media_type_of(key), "Metadata": metadata},
                Config=self.transfer,
            )
        source.unlink(missing_ok=True)
        return True

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from None
            raise
        body: BinaryIO = answer["Body"]
        return body

    def stat(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return StoredObject(int(head["ContentLength"]), head.get("Metadata", {}).get("sha256"))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if is_content_key(key):
                    yield key

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str) -> str | None:
        url: str = self.presign_client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._name(key),
                # The bytes under a key never change: a client may keep them.
                "ResponseCacheControl": "private, max-age=31536000, immutable",
            },
            ExpiresIn=self.url_seconds,
        )
        return url

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def s3_client(settings: Settings, endpoint_url: str | None) -> Any:
    """A boto3 S3 client as the settings say; credentials come from boto3's own chain
    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role)."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=60,
        # Checksums only where S3 requires them: botocore's newer default (a CRC32 trailer
        # on every upload) is refused by several S3-compatible stores (OSS, COS, older
        # MinIO). Each object's SHA-256 is checked by roadchief itself.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=settings.s3_region, config=config
    )


def s3_storage(settings: Settings) -> S3MediaStorage:
    if not settings.s3_bucket:
        raise ValueError("ROADCHIEF_S3_BUCKET is not set")
    client = s3_client(settings, settings.s3_endpoint_url)
    presign = (
        s3_client(settings, settings.s3_public_endpoint_url)
        if settings.s3_public_endpoint_url
        else client
    )
    return S3MediaStorage(
        client,
        settings.s3_bucket,
        prefix=settings.s3_prefix,
        scratch=settings.media_dir / "tmp",
        url_seconds=settings.photo_url_seconds,
        presign_client=presign,
    )
