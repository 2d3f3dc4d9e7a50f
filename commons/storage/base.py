"""The BlobStore seam: large objects by sha256, whatever holds the bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobNotFound(Exception):
    """No object with this digest is stored."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob not found: {sha256}")
        self.sha256 = sha256


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


class BlobStore(Protocol):
    """Content-addressed storage. Objects are immutable; a key is the sha256 of the bytes."""

    def exists(self, sha256: str) -> bool: ...

    def stat(self, sha256: str) -> BlobInfo:
        """Size of a stored object. Raises BlobNotFound."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A readable, seekable file object. Raises BlobNotFound."""
        ...

    def staging_path(self) -> Path:
        """A fresh temporary path on the same filesystem as the store, for uploads in progress."""
        ...

    def adopt(self, src: Path, sha256: str, size: int) -> BlobInfo:
        """Move a verified staging file into the store (atomic); a no-op if the object exists."""
        ...

    def delete(self, sha256: str) -> None: ...

    def local_path(self, sha256: str) -> Path | None:
        """Path of the object on local disk, for zero-copy serving; None for remote stores."""
        ...
