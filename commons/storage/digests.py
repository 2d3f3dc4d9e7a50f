"""Hashing while bytes move: sha256 (LFS oid) and the git blob id, in one pass."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO


def git_blob_id(data: bytes) -> str:
    """Git's object id of a blob: sha1 of `blob <len>\\0` + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_digests(path: Path, chunk: int = 4 << 20) -> tuple[str, str, int]:
    """(sha256, git blob id, size) of a file on disk."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    buf = bytearray(chunk)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            sha256.update(view[:n])
            sha1.update(view[:n])
    return sha256.hexdigest(), sha1.hexdigest(), size


def copy_with_sha256(src: BinaryIO, dest: BinaryIO, chunk: int = 4 << 20) -> tuple[str, int]:
    """Copy a stream, returning its sha256 and size."""
    sha = hashlib.sha256()
    size = 0
    while data := src.read(chunk):
        sha.update(data)
        dest.write(data)
        size += len(data)
    return sha.hexdigest(), size
