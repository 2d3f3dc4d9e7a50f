"""A BlobStore in memory, for tests of code that needs one but not its disk."""

from __future__ import annotations

import io
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from commons.storage.base import BlobInfo, BlobNotFound


class InMemoryBlobStore:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="commons-mem-blobs-"))

    def exists(self, sha256: str) -> bool:
        return sha256 in self._objects

    def stat(self, sha256: str) -> BlobInfo:
        if sha256 not in self._objects:
            raise BlobNotFound(sha256)
        return BlobInfo(sha256, len(self._objects[sha256]))

    def open(self, sha256: str) -> BinaryIO:
        if sha256 not in self._objects:
            raise BlobNotFound(sha256)
        return io.BytesIO(self._objects[sha256])

    def staging_path(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    def adopt(self, src: Path, sha256: str, size: int) -> BlobInfo:
        self._objects.setdefault(sha256, src.read_bytes())
        src.unlink(missing_ok=True)
        return BlobInfo(sha256, size)

    def delete(self, sha256: str) -> None:
        self._objects.pop(sha256, None)

    def local_path(self, sha256: str) -> Path | None:
        return None
