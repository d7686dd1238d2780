"""Where photo files live: an interface, and the local-directory implementation.

Keys are content addresses ("ab/cd/abcd…ef.jpg"), so writing the same key twice writes
the same bytes and a file is never changed once written. An S3-compatible object store
implements the same four methods (put_file as an upload, local_path returning None and the
router redirecting to a presigned URL instead).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Protocol


def content_key(sha256: str, extension: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


class MediaStorage(Protocol):
    def put_file(self, key: str, source: Path) -> bool:
        """Move the file `source` in under `key` (or drop it if the key exists: same
        content); True if it was written now."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A file the web server can send directly, if the storage has one."""
        ...


class LocalMediaStorage:
    """Files under one directory; writes go to a temporary name and are renamed into place,
    so a reader never sees half a file and a crash leaves no partial one under a key."""

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

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
