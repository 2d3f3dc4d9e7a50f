"""Open a file of a repo revision for partial reads: the blob store's object (LFS) or the git blob.

Readers that need only a header or a footer (the weights inspector, the dataset viewer) seek and
read what they need; an LFS object is never copied or read whole. Git-stored files are below the
LFS threshold (10 MB by default), so reading one whole is cheap.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from commons.hub.gitrepo import GitRepo
from commons.hub.storage import HubStorage
from commons.hub.trees import FileInfo


@contextmanager
def open_file(storage: HubStorage, git: GitRepo, info: FileInfo) -> Iterator[BinaryIO]:
    """A seekable binary file with the content of `info`."""
    if info.lfs is not None:
        with storage.blobs.open(info.lfs.sha256) as fh:
            yield fh
    else:
        yield io.BytesIO(git.read_blob(info.oid))


def local_path(storage: HubStorage, info: FileInfo) -> Path | None:
    """The object's path on this machine, when the blob store keeps it in a local file (native readers)."""
    if info.lfs is None:
        return None
    return storage.blobs.local_path(info.lfs.sha256)


class CountingReader(io.RawIOBase):
    """A read-only view of `fh` that counts the bytes read through it: the pages report how little
    of a large file they needed, and the tests prove it."""

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__()
        self._fh = fh
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self.bytes_read += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()
