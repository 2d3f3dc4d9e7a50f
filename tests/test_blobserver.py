"""The blob server over real loopback HTTP: signed downloads (sendfile, ranges) and verified uploads."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from commons.blobserver import BlobServer, blob_url, upload_url
from commons.storage.local import LocalBlobStore
from commons.storage.signing import UrlSigner

MAX_SIZE = 64 << 20


@dataclass
class Env:
    server: BlobServer
    store: LocalBlobStore
    signer: UrlSigner
    base: str
    stored: list[tuple[str, int]] = field(default_factory=list)

    def put_local(self, data: bytes) -> str:
        """Store bytes directly (not over HTTP); their sha256."""
        oid = hashlib.sha256(data).hexdigest()
        staging = self.store.staging_path()
        staging.write_bytes(data)
        self.store.adopt(staging, oid, len(data))
        return oid

    def get_url(self, oid: str, size: int, ttl: int = 60, filename: str | None = None) -> str:
        return blob_url(self.base, self.signer, oid, size, ttl, filename)

    def put_url(self, oid: str, size: int, ttl: int = 60) -> str:
        return upload_url(self.base, self.signer, oid, size, ttl)

    def staging_files(self) -> list[Path]:
        return list((self.store.root / "staging").iterdir())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = LocalBlobStore(tmp_path / "blobs")
    signer = UrlSigner(b"test-key")
    stored: list[tuple[str, int]] = []
    server = BlobServer(store, signer, "127.0.0.1", 0, on_stored=lambda oid, size: stored.append((oid, size)),
                        max_size=MAX_SIZE, timeout=10)
    server.start()
    try:
        yield Env(server, store, signer, f"http://127.0.0.1:{server.port}", stored)
    finally:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def blob(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(b"%d" % seed).digest(size) if size else b""


# ----------------------------------------------------------------------------- downloads


def test_get_serves_bytes_and_headers(env: Env, client: httpx.Client) -> None:
    data = blob(300_000)
    oid = env.put_local(data)
    r = client.get(env.get_url(oid, len(data)))
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{oid}"'
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert 0 < int(r.headers["cache-control"].rsplit("=", 1)[1]) <= 60
    assert "content-disposition" not in r.headers


def test_head_has_real_length_and_no_body(env: Env, client: httpx.Client) -> None:
    data = blob(12345)
    oid = env.put_local(data)
    r = client.head(env.get_url(oid, len(data)))
    assert r.status_code == 200
    assert r.headers["content-length"] == "12345"
    assert r.content == b""
    # The connection is still in step after a HEAD: the next answer parses.
    assert client.get(env.get_url(oid, len(data))).content == data


def test_empty_object(env: Env, client: httpx.Client) -> None:
    oid = env.put_local(b"")
    r = client.get(env.get_url(oid, 0))
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "0")
    assert client.get(env.get_url(oid, 0), headers={"Range": "bytes=-5"}).status_code == 416


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=99990-", 99990, 99999), ("bytes=-7", 99993, 99999),
     ("bytes=5-999999", 5, 99999), ("bytes=0-0", 0, 0)],
)
def test_range(env: Env, client: httpx.Client, spec: str, start: int, end: int) -> None:
    data = blob(100_000)
    oid = env.put_local(data)
    r = client.get(env.get_url(oid, len(data)), headers={"Range": spec})
    assert r.status_code == 206
    assert r.content == data[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("spec", ["bytes=100000-", "bytes=200000-200010", "bytes=-0"])
def test_range_not_satisfiable(env: Env, client: httpx.Client, spec: str) -> None:
    data = blob(100_000)
    oid = env.put_local(data)
    r = client.get(env.get_url(oid, len(data)), headers={"Range": spec})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */100000"
    assert "error" in r.json()


def test_if_range_mismatch_sends_everything(env: Env, client: httpx.Client) -> None:
    data = blob(1000)
    oid = env.put_local(data)
    url = env.get_url(oid, len(data))
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}).status_code == 200
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": f'"{oid}"'})
    assert (r.status_code, r.content) == (206, data[:10])
    assert client.get(url, headers={"If-None-Match": f'"{oid}"'}).status_code == 304


def test_filename_becomes_content_disposition(env: Env, client: httpx.Client) -> None:
    oid = env.put_local(b"abc")
    r = client.get(env.get_url(oid, 3, filename="model.safetensors"))
    assert r.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    r = client.get(env.get_url(oid, 3, filename='we"ird\r\nname é.bin'))
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="we_ird__name _.bin"; filename*=UTF-8\'\'')
    assert "%C3%A9" in disposition


def test_bad_or_expired_signature_is_403(env: Env, client: httpx.Client) -> None:
    data = blob(100)
    oid = env.put_local(data)
    url = env.get_url(oid, len(data))
    assert client.get(url.replace("sig=", "sig=0")).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 403
    assert client.get(env.get_url(oid, len(data), ttl=-5)).status_code == 403
    assert client.get(url.replace(f"size={len(data)}", "size=1")).status_code == 403
    # An upload signature does not grant a download.
    assert client.get(env.put_url(oid, len(data)).replace("/upload/", "/blobs/")).status_code == 403
    r = client.head(url.replace("sig=", "sig=0"))
    assert r.status_code == 403 and r.content == b""


def test_missing_is_404(env: Env, client: httpx.Client) -> None:
    oid = hashlib.sha256(b"never stored").hexdigest()
    r = client.get(env.get_url(oid, 12))
    assert r.status_code == 404
    assert r.json() == {"error": "Not found"}
    assert client.get(env.get_url("not-a-digest", 12)).status_code == 404
    assert client.get(f"{env.base}/elsewhere").status_code == 404


def test_wrong_method_is_405(env: Env, client: httpx.Client) -> None:
    oid = env.put_local(b"x")
    r = client.post(env.get_url(oid, 1), content=b"body")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.get(env.put_url(oid, 1)).status_code == 405


def test_keep_alive_reuses_one_connection(env: Env, client: httpx.Client) -> None:
    data = blob(2 << 20)
    oid = env.put_local(data)
    ports = set()
    for _ in range(3):
        with client.stream("GET", env.get_url(oid, len(data))) as r:
            assert r.read() == data
            ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
    r = client.put(env.put_url(oid, len(data)), content=data)
    assert r.status_code == 200
    assert client.get(env.get_url(oid, len(data)), headers={"Range": "bytes=0-1"}).status_code == 206
    assert len(ports) == 1


def test_pipelined_requests_on_raw_socket(env: Env) -> None:
    oid = env.put_local(b"hello")
    path = urlsplit(env.get_url(oid, 5))
    request = f"GET {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(request * 2 + request.replace(b"Host: x", b"Host: x\r\nConnection: close"))
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.endswith(b"hello")


def test_malformed_request_is_400(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 400 ")


def test_non_ascii_digits_are_refused(env: Env, client: httpx.Client) -> None:
    oid = env.put_local(b"x")
    url = env.get_url(oid, 1)
    exp = url.split("exp=")[1].split("&")[0]
    assert client.get(url.replace(f"exp={exp}", "exp=%C2%B2")).status_code == 403
    path = urlsplit(env.put_url(oid, 1))
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(f"PUT {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n"
                  .encode("latin-1"))
        assert s.recv(65536).startswith(b"HTTP/1.1 400 ")


# ----------------------------------------------------------------------------- uploads


# Inline (< 8 MiB) and pipelined paths; 16 MiB ends on an O_DIRECT boundary, 20 MiB + 12345 does not.
@pytest.mark.parametrize("size", [0, 1000, 3 << 20, 16 << 20, (20 << 20) + 12345])
def test_upload_then_download(env: Env, client: httpx.Client, size: int) -> None:
    data = blob(size, seed=size)
    oid = hashlib.sha256(data).hexdigest()
    r = client.put(env.put_url(oid, size), content=data)
    assert r.status_code == 200, r.text
    assert r.json() == {"oid": oid, "size": size}
    assert env.stored == [(oid, size)]
    assert env.store.stat(oid).size == size
    assert client.get(env.get_url(oid, size)).content == data
    assert env.staging_files() == []


def test_upload_chunked(env: Env, client: httpx.Client) -> None:
    data = blob(10 << 20, seed=7)
    oid = hashlib.sha256(data).hexdigest()

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 1_000_003):
            yield data[i : i + 1_000_003]

    r = client.put(env.put_url(oid, len(data)), content=pieces())
    assert r.status_code == 200, r.text
    assert env.store.open(oid).read() == data


def test_upload_chunked_too_long_or_short(env: Env, client: httpx.Client) -> None:
    data = blob(100_000, seed=3)
    oid = hashlib.sha256(data).hexdigest()
    r = client.put(env.put_url(oid, len(data)), content=iter([data, b"extra"]))
    assert r.status_code == 400 and "longer" in r.json()["error"]
    r = client.put(env.put_url(oid, len(data)), content=iter([data[:-1]]))
    assert r.status_code == 400 and "shorter" in r.json()["error"]
    assert not env.store.exists(oid)
    assert env.staging_files() == []


@pytest.mark.parametrize("size", [5000, 12 << 20])
def test_upload_with_wrong_hash_is_rejected(env: Env, client: httpx.Client, size: int) -> None:
    data = blob(size, seed=1)
    claimed = hashlib.sha256(b"something else").hexdigest()
    r = client.put(env.put_url(claimed, size), content=data)
    assert r.status_code == 400
    assert hashlib.sha256(data).hexdigest() in r.json()["error"]
    assert not env.store.exists(claimed)
    assert not env.store.exists(hashlib.sha256(data).hexdigest())
    assert env.stored == []
    assert env.staging_files() == []
    assert client.get(env.get_url(claimed, size)).status_code == 404  # the same connection still works


def test_upload_size_mismatch(env: Env, client: httpx.Client) -> None:
    data = blob(4000, seed=2)
    oid = hashlib.sha256(data).hexdigest()
    r = client.put(env.put_url(oid, len(data) + 1), content=data)
    assert r.status_code == 400 and "signed size" in r.json()["error"]
    r = client.put(env.put_url(oid, len(data) - 1), content=data)
    assert r.status_code == 400
    assert not env.store.exists(oid)
    assert env.staging_files() == []
    assert client.put(env.put_url(oid, len(data)), content=data).status_code == 200


def test_upload_signature_checks(env: Env, client: httpx.Client) -> None:
    data = blob(1000, seed=4)
    oid = hashlib.sha256(data).hexdigest()
    assert client.put(env.put_url(oid, len(data)).replace("sig=", "sig=0"), content=data).status_code == 403
    assert client.put(env.put_url(oid, len(data), ttl=-1), content=data).status_code == 403
    download = env.get_url(oid, len(data)).replace("/blobs/", "/upload/")
    assert client.put(download, content=data).status_code == 403
    assert not env.store.exists(oid)
    assert client.put(env.put_url(oid, len(data)), content=data).status_code == 200  # connection kept


def test_upload_refused_before_a_large_body_still_answers(env: Env, client: httpx.Client) -> None:
    data = blob(8 << 20, seed=5)
    oid = hashlib.sha256(data).hexdigest()
    r = client.put(env.put_url(oid, len(data)).replace("sig=", "sig=0"), content=data)
    assert r.status_code == 403  # answered, then the connection is closed without a reset
    assert client.put(env.put_url(oid, len(data)), content=data).status_code == 200


def test_upload_over_max_size_is_413(env: Env) -> None:
    oid = hashlib.sha256(b"big").hexdigest()
    path = urlsplit(env.put_url(oid, MAX_SIZE + 1))
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(f"PUT {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_SIZE + 1}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
    assert env.staging_files() == []


def test_upload_needs_a_length(env: Env) -> None:
    oid = hashlib.sha256(b"").hexdigest()
    path = urlsplit(env.put_url(oid, 0))
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(f"PUT {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 411 ")


def test_upload_with_expect_100_continue(env: Env) -> None:
    data = blob(50_000, seed=6)
    oid = hashlib.sha256(data).hexdigest()
    path = urlsplit(env.put_url(oid, len(data)))
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(f"PUT {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(data)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    assert env.store.exists(oid)


def test_upload_of_existing_object_is_still_verified(env: Env, client: httpx.Client) -> None:
    data = blob(9 << 20, seed=8)
    oid = env.put_local(data)
    assert client.put(env.put_url(oid, len(data)), content=data).status_code == 200
    assert env.stored == [(oid, len(data))]
    forged = bytearray(data)
    forged[-1] ^= 1
    assert client.put(env.put_url(oid, len(data)), content=bytes(forged)).status_code == 400
    assert env.store.open(oid).read() == data
    assert env.staging_files() == []


def test_client_vanishing_mid_upload_leaves_nothing(env: Env) -> None:
    size = 16 << 20
    oid = hashlib.sha256(b"never completed").hexdigest()
    path = urlsplit(env.put_url(oid, size))
    with socket.create_connection(("127.0.0.1", env.server.port)) as s:
        s.sendall(f"PUT {path.path}?{path.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        s.sendall(os.urandom(5 << 20))
    for _ in range(200):  # the server notices the close asynchronously
        if not env.staging_files():
            break
        threading.Event().wait(0.05)
    assert env.staging_files() == []
    assert not env.store.exists(oid)


def test_concurrent_uploads(env: Env) -> None:
    blobs = [blob((9 << 20) + i * 1001, seed=100 + i) for i in range(6)]
    blobs.append(blobs[0])  # two uploads of the same object race for adopt
    errors: list[str] = []

    def upload(data: bytes) -> None:
        oid = hashlib.sha256(data).hexdigest()
        with httpx.Client(timeout=60) as c:
            r = c.put(env.put_url(oid, len(data)), content=data)
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=upload, args=(data,)) for data in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for data in blobs:
        assert env.store.open(hashlib.sha256(data).hexdigest()).read() == data
    assert len(env.stored) == len(blobs)
    assert env.staging_files() == []


def test_upload_falls_back_to_buffered_writes(env: Env, client: httpx.Client,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_direct(path: str | Path, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_DIRECT:
            real_open(path, flags & ~os.O_DIRECT, mode)  # like Linux: created, then refused
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_direct)
    data = blob((12 << 20) + 1, seed=9)
    oid = hashlib.sha256(data).hexdigest()
    assert client.put(env.put_url(oid, len(data)), content=data).status_code == 200
    assert env.store.open(oid).read() == data
    assert env.staging_files() == []


def test_stop_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    signer = UrlSigner(b"k")
    server = BlobServer(store, signer, "127.0.0.1", 0)
    server.start()
    data = b"data"
    oid = hashlib.sha256(data).hexdigest()
    with httpx.Client() as c:
        assert c.put(upload_url(f"http://127.0.0.1:{server.port}", signer, oid, 4, 60), content=data).status_code == 200
        server.stop(grace=2)  # returns although the client keeps its connection open
        with pytest.raises(httpx.TransportError):
            c.get(blob_url(f"http://127.0.0.1:{server.port}", signer, oid, 4, 60))


def test_url_builders(env: Env) -> None:
    oid = "a" * 64
    url = blob_url(env.base + "/", env.signer, oid, 10, 60, filename="dir/x y.bin")
    assert url.startswith(f"{env.base}/blobs/{oid}?size=10&exp=")
    assert url.endswith("&filename=dir%2Fx%20y.bin")
    assert upload_url(env.base, env.signer, oid, 10, 60).startswith(f"{env.base}/upload/{oid}?size=10&exp=")
