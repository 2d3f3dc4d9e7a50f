"""The blob server: large objects in and out at native speed, by signed URL, on a port of its own.

Python ASGI file responses move ~0.29 GB/s on the project machine against ~1.3 GB/s for nginx's
`sendfile` (docs/perf-anchors.md, H2/H3). So `commons serve` runs this small threaded HTTP/1.1
server next to the FastAPI app. The app redirects `/resolve/` of large files here and the LFS
batch API hands out its URLs, the way the Hub hands transfers to its CDN.

- `GET|HEAD /blobs/<sha256>?size=&exp=&sig=[&filename=]`: the object, with single-range support;
  the body leaves through `sendfile(2)` (zero copy, GIL released).
- `PUT /upload/<sha256>?size=&exp=&sig=`: the body is received, hashed and written by three
  threads at once (hashlib and the syscalls release the GIL), verified, then adopted by the store.
  Large staging files are written with O_DIRECT (see `_open_staging` for why).

The HTTP parsing is our own and deliberately small: `http.server` reads bodies through a buffered
file object and cannot hand a socket to `sendfile` or `recv_into` on its own terms.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import mmap
import os
import queue
import re
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from commons.api.ranges import RangeNotSatisfiable, parse_range
from commons.storage.base import BlobNotFound, BlobStore
from commons.storage.signing import UrlSigner

__all__ = ["BlobServer", "blob_url", "upload_url"]

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_HEAD = 64 * 1024
"""Largest request head (request line + headers) accepted."""
_DRAIN_LIMIT = 64 * 1024
"""A refused request body up to this size is read and dropped so the connection stays usable."""
_CHUNK = 4 << 20
"""Upload pipeline buffer. Large enough that each stage runs in C (GIL released) for ~1-4 ms per
call, small enough that a few of them stay in the 32 MiB L3 cache between the stages."""
_BUFFERS = 6
"""Buffers in flight per upload: one per stage plus spares that absorb jitter between them."""
_POOL_MAX = _BUFFERS
"""Pipeline buffers kept between uploads (one upload's worth): fresh ones cost page faults."""
_DIRECT_ALIGN = 4096
"""O_DIRECT needs block-aligned lengths; a shorter final piece is written through the page cache."""
_SENDFILE_MAX = 1 << 30
"""Largest count passed to one sendfile call (Python refuses larger on some platforms)."""
_SERVER = "commons-blobserver"

_REASONS = {
    100: "Continue", 200: "OK", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
    413: "Content Too Large", 416: "Range Not Satisfiable", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}


# ----------------------------------------------------------------------------- URLs


def blob_url(base_url: str, signer: UrlSigner, sha256: str, size: int, ttl: int,
             filename: str | None = None) -> str:
    """Signed download URL of an object on the blob server at `base_url`."""
    query = signer.sign("download", sha256, size, ttl)
    if filename:
        query += "&filename=" + quote(filename, safe="")
    return f"{base_url.rstrip('/')}/blobs/{sha256}?{query}"


def upload_url(base_url: str, signer: UrlSigner, sha256: str, size: int, ttl: int) -> str:
    """Signed URL that accepts one PUT of the object's bytes."""
    return f"{base_url.rstrip('/')}/upload/{sha256}?{signer.sign('upload', sha256, size, ttl)}"


# ----------------------------------------------------------------------------- HTTP plumbing


class _ClientGone(Exception):
    """The peer closed or stalled mid-request: nothing more can be said to it."""


class _HttpError(Exception):
    """A request that cannot be parsed: answered, then the connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Conn:
    """One client socket and the bytes read from it but not yet consumed."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:  # reset, or SO_RCVTIMEO expired
            raise _ClientGone from exc
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes | None:
        """The next request head without its blank line; None on a clean close between requests."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head.lstrip(b"\r\n")  # RFC 9112 2.2: ignore empty lines before a request
            if len(self.buf) > _MAX_HEAD:
                raise _HttpError(431, "Request head too large")
            start = max(0, len(self.buf) - 3)
            if not self._fill():
                if self.buf.strip():
                    raise _ClientGone
                return None

    def readline(self) -> bytes:
        """One CRLF-terminated line (chunked framing), without the CRLF."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > 4096:
                raise _HttpError(400, "Chunk header line too long")
            start = max(0, len(self.buf) - 1)
            if not self._fill():
                raise _ClientGone

    def recv_into(self, view: memoryview, nbytes: int) -> int:
        """Up to `nbytes` body bytes into `view`; 0 only when the peer has closed."""
        if self.buf:
            n = min(nbytes, len(self.buf))
            view[:n] = self.buf[:n]
            del self.buf[:n]
            return n
        # MSG_WAITALL: one syscall (and one GIL round trip) fills the whole request instead of
        # ~64 KiB per call; SO_RCVTIMEO still bounds a stall.
        try:
            return self.sock.recv_into(view, nbytes, socket.MSG_WAITALL)
        except OSError as exc:  # reset, or SO_RCVTIMEO expired with nothing read
            raise _ClientGone from exc


class _Body(Protocol):
    def read_into(self, view: memoryview) -> int: ...


class _FixedBody:
    """A body framed by Content-Length."""

    def __init__(self, conn: _Conn, length: int) -> None:
        self._conn = conn
        self.remaining = length

    def read_into(self, view: memoryview) -> int:
        if self.remaining == 0:
            return 0
        n = self._conn.recv_into(view, min(len(view), self.remaining))
        if n == 0:
            raise _ClientGone
        self.remaining -= n
        return n


class _ChunkedBody:
    """A body in chunked transfer coding (clients that stream without knowing the length)."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self._left = 0
        self.done = False

    def read_into(self, view: memoryview) -> int:
        if self.done:
            return 0
        if self._left == 0:
            line = self._conn.readline()
            try:
                self._left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "Bad chunk size") from None
            if self._left == 0:
                while self._conn.readline():  # trailer fields, ignored
                    pass
                self.done = True
                return 0
        n = self._conn.recv_into(view, min(len(view), self._left))
        if n == 0:
            raise _ClientGone
        self._left -= n
        if self._left == 0 and self._conn.readline() != b"":
            raise _HttpError(400, "Chunk data longer than its size")
        return n


def _fill(body: _Body, buf: bytearray | mmap.mmap, limit: int) -> int:
    """Read body bytes into `buf`, at most `limit`; fewer only at the end of the body."""
    view = memoryview(buf)[:limit]
    filled = 0
    while filled < limit:
        n = body.read_into(view[filled:])
        if n == 0:
            break
        filled += n
    return filled


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    keep_alive: bool


def _parse_head(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _HttpError(400, "Malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HttpError(505, "Only HTTP/1.x is served")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _HttpError(400, "Malformed header line")
        name, value = name.lower(), value.strip()
        if name in headers:
            if name == "content-length":
                if headers[name] != value:
                    raise _HttpError(400, "Conflicting Content-Length headers")
                continue
            value = f"{headers[name]}, {value}"  # repeated fields are one comma-separated list
        headers[name] = value
    split = urlsplit(target)  # also accepts the absolute form `http://host/path?query`
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return _Request(method, split.path, query, headers, keep_alive)


def _content_disposition(filename: str) -> str:
    """`attachment` with a header-safe ASCII name, plus RFC 6266 `filename*` when that lost anything."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "download"
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    if ascii_name == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _set_timeouts(sock: socket.socket, seconds: float) -> None:
    # Kernel-side timeouts on a *blocking* socket: a Python-level timeout would make the socket
    # non-blocking, and then sendfile and recv_into return after every socket-buffer's worth.
    tv = struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


# ----------------------------------------------------------------------------- the server


class BlobServer:
    """Threaded HTTP/1.1 server for signed blob downloads and verified uploads.

    One thread per connection (keep-alive), plus two helper threads per large upload. Objects
    only enter the store through `store.adopt` after their sha256 and size matched; a failed or
    killed upload leaves at most a file in the store's staging area.

    `timeout` bounds every stall (idle keep-alive, a body that stops arriving, a reader that stops
    reading); `direct_io=False` writes large uploads through the page cache instead of O_DIRECT.
    """

    def __init__(
        self,
        store: BlobStore,
        signer: UrlSigner,
        host: str,
        port: int,
        on_stored: Callable[[str, int], None] | None = None,
        max_size: int | None = None,
        *,
        timeout: float = 60.0,
        backlog: int = 128,
        direct_io: bool = True,
    ) -> None:
        self._store = store
        self._signer = signer
        self._host = host
        self._port = port
        self._on_stored = on_stored
        self._max_size = max_size
        self._timeout = timeout
        self._backlog = backlog
        self._direct_io = direct_io and hasattr(os, "O_DIRECT")
        self._pool: list[mmap.mmap] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}

    @property
    def port(self) -> int:
        """The bound port (the real one after `start()` when constructed with port 0)."""
        return self._port

    def start(self) -> None:
        """Bind, listen and serve from background daemon threads."""
        if self._listener is not None:
            raise RuntimeError("BlobServer already started")
        family, kind, proto, _, addr = socket.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setblocking(False)  # accept() after select() must not hang if the client left
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and self._host in ("", "::"):
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
            listener.bind(addr)
            listener.listen(self._backlog)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._stopping.clear()
        # A pipe wakes the accept loop on stop(): closing a socket does not interrupt accept().
        self._wake_r, self._wake_w = os.pipe()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="blobserver-accept", daemon=True
        )
        self._accept_thread.start()
        log.info("blob server listening on %s:%d", self._host, self._port)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, cut open connections (uploads in flight are dropped), join threads."""
        if self._listener is None:
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(grace)
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._listener = None
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv or sendfile
        deadline = time.monotonic() + grace
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._pool.clear()

    def __enter__(self) -> BlobServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ connections

    def _accept_loop(self) -> None:
        assert self._listener is not None
        listener = self._listener
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = {key.fileobj for key, _ in sel.select()}
                if self._wake_r in ready or self._stopping.is_set():
                    return
                try:
                    sock, _ = listener.accept()
                except OSError as exc:
                    # EMFILE and friends: back off instead of spinning; the client waits in the backlog.
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        log.warning("blob server cannot accept: %s", exc)
                        time.sleep(0.1)
                    continue
                sock.settimeout(None)
                _set_timeouts(sock, self._timeout)
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                thread = threading.Thread(
                    target=self._serve, args=(sock,), name="blobserver-conn", daemon=True
                )
                with self._lock:
                    self._conns[sock] = thread
                thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            while not self._stopping.is_set():
                head = conn.read_head()
                if head is None:
                    break
                try:
                    request = _parse_head(head)
                except _HttpError as exc:
                    self._send_json(conn, exc.status, {"error": exc.message}, keep_alive=False)
                    break
                if not self._dispatch(conn, request):
                    break
        except _HttpError as exc:  # raised before any byte of a response was sent
            with contextlib.suppress(OSError):
                self._send_json(conn, exc.status, {"error": exc.message}, keep_alive=False)
                self._lingering_close(conn)
        except (_ClientGone, OSError) as exc:
            log.debug("blob server connection ended: %r", exc)
        except Exception:
            log.exception("blob server: unexpected error")
        finally:
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()

    def _dispatch(self, conn: _Conn, req: _Request) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        kind, _, oid = req.path.lstrip("/").partition("/")
        if kind == "blobs" and "/" not in oid:
            if req.method in ("GET", "HEAD"):
                return self._get(conn, req, oid)
            return self._refuse(conn, req, 405, "Use GET or HEAD", [("Allow", "GET, HEAD")])
        if kind == "upload" and "/" not in oid:
            if req.method == "PUT":
                return self._put(conn, req, oid)
            return self._refuse(conn, req, 405, "Use PUT", [("Allow", "PUT")])
        return self._refuse(conn, req, 404, "Not found")

    # ------------------------------------------------------------------ responses

    def _send_head(self, conn: _Conn, status: int, headers: list[tuple[str, str]], keep_alive: bool,
                   body: bytes = b"", more: bool = False) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Server: {_SERVER}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        # MSG_MORE lets the head share a segment with the sendfile data that follows.
        conn.sock.sendall(data, socket.MSG_MORE if more else 0)

    def _send_json(self, conn: _Conn, status: int, payload: dict[str, object], keep_alive: bool,
                   headers: list[tuple[str, str]] | None = None, head_only: bool = False) -> None:
        body = json.dumps(payload).encode()
        head = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(headers or [])]
        self._send_head(conn, status, head, keep_alive, b"" if head_only else body)

    def _refuse(self, conn: _Conn, req: _Request, status: int, message: str,
                headers: list[tuple[str, str]] | None = None) -> bool:
        """Answer an error without reading the request body; False when the connection must close."""
        pending = self._pending_body(req)
        keep = req.keep_alive and not self._stopping.is_set()
        expects = "100-continue" in req.headers.get("expect", "").lower()
        if pending is None or pending > _DRAIN_LIMIT or expects:
            # Too much (or an unknown amount) to read: say so and close. Clients that already sent
            # part of the body get the answer thanks to the lingering close below.
            keep = keep and pending == 0
        elif pending:
            scratch = bytearray(pending)
            if _fill(_FixedBody(conn, pending), scratch, pending) != pending:
                raise _ClientGone
        self._send_json(conn, status, {"error": message}, keep, headers, head_only=req.method == "HEAD")
        log.debug("%s %s -> %d", req.method, req.path, status)
        if not keep:
            self._lingering_close(conn)
        return keep

    @staticmethod
    def _pending_body(req: _Request) -> int | None:
        if "transfer-encoding" in req.headers:
            return None
        length = req.headers.get("content-length", "0")
        return int(length) if _is_number(length) else None

    def _lingering_close(self, conn: _Conn) -> None:
        # Closing with unread data makes the kernel send RST, and a client still writing its body
        # then loses our answer. Half-close and swallow what keeps coming, for a bounded time.
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
            _set_timeouts(conn.sock, 1.0)
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and conn.sock.recv(1 << 20):
                pass

    def _verify(self, action: str, oid: str, req: _Request) -> bool:
        """Whether the query signs `action` on `oid`; size and exp must be plain decimals."""
        q = req.query
        size, exp = q.get("size", ""), q.get("exp", "")
        return _is_number(size) and _is_number(exp) and self._signer.verify(action, oid, size, exp, q.get("sig"))

    # ------------------------------------------------------------------ downloads

    def _get(self, conn: _Conn, req: _Request, oid: str) -> bool:
        if not self._verify("download", oid, req):
            return self._refuse(conn, req, 403, "Invalid or expired signature")
        try:
            path = self._store.local_path(oid) if _HEX64.match(oid) else None
            if path is None and _HEX64.match(oid) and self._store.exists(oid):
                return self._get_stream(conn, req, oid)
            if path is None:
                raise BlobNotFound(oid)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (BlobNotFound, FileNotFoundError):
            return self._refuse(conn, req, 404, "Not found")
        try:
            total = os.fstat(fd).st_size
            planned = self._plan(conn, req, oid, total)
            if planned is None:
                return req.keep_alive
            status, headers, offset, length = planned
            keep = req.keep_alive and not self._stopping.is_set()
            send_body = req.method == "GET" and length > 0
            self._send_head(conn, status, headers, keep, more=send_body)
            if send_body:
                self._sendfile(conn.sock, fd, offset, length)
            log.debug("%s %s -> %d (%d bytes)", req.method, req.path, status, length)
            return keep
        finally:
            os.close(fd)

    def _get_stream(self, conn: _Conn, req: _Request, oid: str) -> bool:
        """Serve from a store without local files (copying, not zero-copy)."""
        with self._store.open(oid) as fh:
            total = fh.seek(0, os.SEEK_END)
            planned = self._plan(conn, req, oid, total)
            if planned is None:
                return req.keep_alive
            status, headers, offset, length = planned
            keep = req.keep_alive and not self._stopping.is_set()
            self._send_head(conn, status, headers, keep, more=req.method == "GET" and length > 0)
            if req.method == "GET":
                fh.seek(offset)
                while length > 0:
                    data = fh.read(min(length, 1 << 20))
                    if not data:
                        raise _ClientGone  # the object shrank: nothing sane left to send
                    conn.sock.sendall(data)
                    length -= len(data)
            return keep

    def _plan(self, conn: _Conn, req: _Request, oid: str, total: int
              ) -> tuple[int, list[tuple[str, str]], int, int] | None:
        """(status, headers, offset, length) of the answer; None when it was already sent (304/416)."""
        etag = f'"{oid}"'
        exp = req.query.get("exp", "0")
        max_age = max(0, int(exp) - int(time.time())) if _is_number(exp) else 0
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Accept-Ranges", "bytes"),
            ("ETag", etag),
            ("Cache-Control", f"private, max-age={max_age}"),
        ]
        if filename := req.query.get("filename"):
            headers.append(("Content-Disposition", _content_disposition(filename)))
        inm = req.headers.get("if-none-match")
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")} if inm is not None else set()
        if "*" in tags or etag in tags:
            self._send_head(conn, 304, headers[2:4], req.keep_alive)
            return None
        range_header = req.headers.get("range")
        if_range = req.headers.get("if-range")
        if if_range is not None and if_range.strip() != etag:
            range_header = None  # the client's partial copy is of something else: send it all
        try:
            span = parse_range(range_header, total)
            if span is not None and span[1] < span[0]:
                raise RangeNotSatisfiable  # a suffix range of an empty object
        except RangeNotSatisfiable:
            self._send_json(conn, 416, {"error": "Range not satisfiable"}, req.keep_alive,
                            [("Content-Range", f"bytes */{total}")], head_only=req.method == "HEAD")
            return None
        if span is None:
            return 200, [*headers, ("Content-Length", str(total))], 0, total
        start, end = span
        length = end - start + 1
        headers += [("Content-Length", str(length)), ("Content-Range", f"bytes {start}-{end}/{total}")]
        return 206, headers, start, length

    @staticmethod
    def _sendfile(sock: socket.socket, fd: int, offset: int, count: int) -> None:
        # os.sendfile rather than socket.sendfile: the latter, on a blocking socket whose
        # SO_SNDTIMEO expired, waits in poll() forever; here a stalled client ends the transfer.
        out = sock.fileno()
        while count > 0:
            try:
                sent = os.sendfile(out, fd, offset, min(count, _SENDFILE_MAX))
            except BlockingIOError:
                raise _ClientGone from None
            if sent == 0:
                raise _ClientGone  # the file is shorter than it was: objects are immutable, so bail
            offset += sent
            count -= sent

    # ------------------------------------------------------------------ uploads

    def _put(self, conn: _Conn, req: _Request, oid: str) -> bool:
        if not _HEX64.match(oid):
            return self._refuse(conn, req, 400, "The object id must be a lowercase sha256")
        if not self._verify("upload", oid, req):
            return self._refuse(conn, req, 403, "Invalid or expired signature")
        size = int(req.query["size"])
        if self._max_size is not None and size > self._max_size:
            return self._refuse(conn, req, 413, f"Objects are limited to {self._max_size} bytes")
        body: _Body
        encoding = req.headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                return self._refuse(conn, req, 501, f"Transfer-Encoding {encoding!r} is not supported")
            body = _ChunkedBody(conn)
        else:
            length = req.headers.get("content-length")
            if length is None:
                return self._refuse(conn, req, 411, "Content-Length is required")
            if not _is_number(length):
                raise _HttpError(400, "Invalid Content-Length")
            if int(length) != size:
                return self._refuse(conn, req, 400, f"Content-Length {length} is not the signed size {size}")
            body = _FixedBody(conn, size)
        if "100-continue" in req.headers.get("expect", "").lower():
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        staging: Path | None = None
        payload: dict[str, object]
        try:
            # An object we hold is still hashed (an upload proves possession) but not written again.
            staging = None if self._store.exists(oid) else self._store.staging_path()
            digest, received, complete = self._receive(body, size, staging)
            keep = complete and req.keep_alive and not self._stopping.is_set()
            if received != size or not complete:
                status = 400
                payload = {"error": f"Body is {'longer' if received > size else 'shorter'} "
                                    f"than the signed size {size}"}
            elif digest != oid:
                status, payload = 400, {"error": f"Content sha256 is {digest}, not {oid}"}
            else:
                if staging is not None:
                    self._store.adopt(staging, oid, size)
                if self._on_stored is not None:
                    self._on_stored(oid, size)
                status, payload = 200, {"oid": oid, "size": size}
        except (_ClientGone, _HttpError):
            raise
        except Exception:
            # The store or on_stored failed (socket errors arrive as _ClientGone): the client is
            # still there to be told.
            log.exception("blob server: storing %s failed", oid)
            status, payload, keep = 500, {"error": "The object could not be stored"}, False
        finally:
            if staging is not None:
                staging.unlink(missing_ok=True)  # a no-op after adopt
        # Answer only now: a client that sees the answer sees the staging file gone, too.
        self._send_json(conn, status, payload, keep)
        log.debug("PUT %s -> %d (%d bytes)", req.path, status, size)
        if not keep:
            self._lingering_close(conn)
        return keep

    def _receive(self, body: _Body, size: int, staging: Path | None) -> tuple[str, int, bool]:
        """Hash (and write to `staging`) the body: (sha256 hex, bytes, body fully consumed).

        Reads at most size + 1 bytes, so an oversized chunked body is detected without reading
        it all.
        """
        pipelined = size >= 2 * _CHUNK
        fd, direct = -1, False
        if staging is not None:
            staging.parent.mkdir(parents=True, exist_ok=True)
            fd, direct = _open_staging(staging, self._direct_io and pipelined)
        try:
            if not pipelined:
                return _receive_inline(body, size, fd)
            with self._lock:
                buffers = self._pool[:_BUFFERS]
                del self._pool[:_BUFFERS]
            buffers += [mmap.mmap(-1, _CHUNK) for _ in range(_BUFFERS - len(buffers))]
            try:
                return _receive_pipelined(body, size, fd, direct, buffers)
            finally:
                with self._lock:
                    self._pool += buffers[: _POOL_MAX - len(self._pool)]
        finally:
            if fd >= 0:
                os.close(fd)


def _open_staging(path: Path, direct: bool) -> tuple[int, bool]:
    """Create the staging file; (fd, whether writes bypass the page cache).

    Why O_DIRECT: on the project machine (a KVM guest) a buffered write costs ~1.3 CPU-seconds
    per GiB in the kernel (page-cache allocation, per-page ext4 bookkeeping), more than the
    sha256 itself, and leaves everything to be flushed by `adopt`'s fsync. Direct writes cost
    ~0.1 CPU-s per GiB and the disk works while the next buffers arrive.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    if direct:
        try:
            return os.open(path, flags | os.O_DIRECT, 0o644), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # tmpfs and some others refuse O_DIRECT: use the cache
                raise
            path.unlink(missing_ok=True)  # Linux may have created it before refusing the flag
    return os.open(path, flags, 0o644), False


def _receive_inline(body: _Body, size: int, fd: int) -> tuple[str, int, bool]:
    """Small bodies: one thread, one buffer."""
    sha = hashlib.sha256()
    buf = bytearray(min(size + 1, _CHUNK))
    received = 0
    while received <= size:
        n = _fill(body, buf, min(len(buf), size + 1 - received))
        if n == 0:
            break
        view = memoryview(buf)[:n]
        sha.update(view)
        if fd >= 0:
            _write_all(fd, view)
        received += n
    return sha.hexdigest(), received, received <= size and _at_end(body)


def _receive_pipelined(body: _Body, size: int, fd: int, direct: bool, buffers: list[mmap.mmap]
                       ) -> tuple[str, int, bool]:
    """Large bodies: reader (this thread, recv_into) -> hasher -> writer -> free list.

    Each stage works on a different buffer, so receiving, sha256 (~1.1 GB/s on one core) and
    writing overlap on both cores; all three release the GIL for the length of a buffer. Every
    buffer but the last is filled completely, which keeps O_DIRECT writes aligned. The buffers
    are page-aligned anonymous mappings, as O_DIRECT requires.
    """
    sha = hashlib.sha256()
    free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
    to_hash: queue.SimpleQueue[tuple[mmap.mmap, int] | None] = queue.SimpleQueue()
    to_write: queue.SimpleQueue[tuple[mmap.mmap, int] | None] = queue.SimpleQueue()
    for buf in buffers:
        free.put(buf)
    failure: list[BaseException] = []

    def hasher() -> None:
        while (item := to_hash.get()) is not None:
            try:
                sha.update(memoryview(item[0])[: item[1]])
            except BaseException as exc:  # pragma: no cover - keep buffers flowing, report later
                failure.append(exc)
            if fd >= 0:
                to_write.put(item)
            else:
                free.put(item[0])
        to_write.put(None)

    def writer() -> None:
        use_direct = direct
        while (item := to_write.get()) is not None:
            buf, n = item
            if not failure:
                try:
                    if use_direct and n % _DIRECT_ALIGN:
                        use_direct = _end_direct(fd)
                    view = memoryview(buf)[:n]
                    done = 0
                    while done < n:
                        try:
                            done += os.write(fd, view[done:])
                        except OSError as exc:
                            if not (use_direct and exc.errno == errno.EINVAL):
                                raise
                            use_direct = _end_direct(fd)  # alignment refused: finish buffered
                except BaseException as exc:  # disk full, I/O error: drain, then fail the upload
                    failure.append(exc)
            free.put(buf)

    threads = [threading.Thread(target=hasher, name="blobserver-hash", daemon=True)]
    if fd >= 0:
        threads.append(threading.Thread(target=writer, name="blobserver-write", daemon=True))
    for thread in threads:
        thread.start()
    received = 0
    try:
        while received <= size and not failure:
            buf = free.get()
            n = _fill(body, buf, min(_CHUNK, size + 1 - received))
            if n == 0:
                free.put(buf)
                break
            received += n
            to_hash.put((buf, n))
    finally:
        to_hash.put(None)
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]
    return sha.hexdigest(), received, received <= size and _at_end(body)


def _end_direct(fd: int) -> bool:
    """Switch a staging file back to buffered writes (for an unaligned tail); returns False."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
    return False


def _is_number(text: str) -> bool:
    """ASCII decimal digits only (str.isdigit also accepts '²', which int() refuses)."""
    return text.isascii() and text.isdigit()


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def _at_end(body: _Body) -> bool:
    """Whether the body was consumed to its end, framing included (the receive loops ask for one
    byte past the signed size, which reads a chunked body's last-chunk marker)."""
    if isinstance(body, _FixedBody):
        return body.remaining == 0
    return isinstance(body, _ChunkedBody) and body.done
