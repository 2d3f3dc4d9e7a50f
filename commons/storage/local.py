"""Blobs as files under one directory: `sha256/ab/cd/<digest>`, written by atomic rename."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO

from commons.storage.base import BlobInfo, BlobNotFound

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._staging = root / "staging"
        self._staging.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        # The digest is validated so that a key can never name a path outside the store.
        if not _HEX64.match(sha256):
            raise BlobNotFound(sha256)
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).is_file()
        except BlobNotFound:
            return False

    def stat(self, sha256: str) -> BlobInfo:
        try:
            return BlobInfo(sha256, self._path(sha256).stat().st_size)
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self._path(sha256).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def staging_path(self) -> Path:
        return self._staging / uuid.uuid4().hex

    def adopt(self, src: Path, sha256: str, size: int) -> BlobInfo:
        dest = self._path(sha256)
        if dest.exists():
            src.unlink(missing_ok=True)
            return BlobInfo(sha256, size)
        created = [p for p in (dest.parent.parent, dest.parent) if not p.exists()]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with src.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(src, dest)
        # The rename (and any directory just made) must be durable before anyone is told "stored".
        for directory in [dest.parent, *(p.parent for p in created)]:
            _fsync_dir(directory)
        return BlobInfo(sha256, size)

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def local_path(self, sha256: str) -> Path | None:
        path = self._path(sha256)
        return path if path.is_file() else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
