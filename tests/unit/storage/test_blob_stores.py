"""One contract, every BlobStore implementation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from commons.storage import BlobNotFound, BlobStore, InMemoryBlobStore, LocalBlobStore
from commons.storage.signing import UrlSigner


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else InMemoryBlobStore()


def _stage(store: BlobStore, data: bytes) -> tuple[Path, str]:
    path = store.staging_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_adopt_open_stat_delete(store: BlobStore) -> None:
    path, sha = _stage(store, b"hello")
    assert not store.exists(sha)
    info = store.adopt(path, sha, 5)
    assert info.size == 5 and store.exists(sha) and store.stat(sha).size == 5
    with store.open(sha) as fh:
        assert fh.read() == b"hello"
    assert not path.exists()
    again, _ = _stage(store, b"hello")
    store.adopt(again, sha, 5)  # idempotent
    store.delete(sha)
    assert not store.exists(sha)
    with pytest.raises(BlobNotFound):
        store.stat(sha)
    with pytest.raises(BlobNotFound):
        store.open(sha)


def test_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    for key in ("../../etc/passwd", "a" * 63, "G" * 64):
        assert not store.exists(key)
        with pytest.raises(BlobNotFound):
            store.open(key)


def test_signer() -> None:
    signer = UrlSigner(b"k")
    query = dict(p.split("=") for p in signer.sign("download", "a" * 64, 10, 60).split("&"))
    assert signer.verify("download", "a" * 64, query["size"], query["exp"], query["sig"])
    assert not signer.verify("upload", "a" * 64, query["size"], query["exp"], query["sig"])
    assert not signer.verify("download", "b" * 64, query["size"], query["exp"], query["sig"])
    assert not signer.verify("download", "a" * 64, "11", query["exp"], query["sig"])
    assert not signer.verify("download", "a" * 64, query["size"], "1", query["sig"])
    assert not UrlSigner(b"other").verify("download", "a" * 64, query["size"], query["exp"], query["sig"])
