"""Bytes by key. `open_blob_store` is the one place a backend is chosen."""

from __future__ import annotations

from commons.config import Settings
from commons.storage.base import BlobInfo, BlobNotFound, BlobStore
from commons.storage.local import LocalBlobStore
from commons.storage.memory import InMemoryBlobStore

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore", "InMemoryBlobStore", "LocalBlobStore", "open_blob_store"]


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "local":
        return LocalBlobStore(settings.blobs_dir)
    if settings.blob_store == "memory":
        return InMemoryBlobStore()
    raise ValueError(f"unknown blob store backend: {settings.blob_store!r}")
