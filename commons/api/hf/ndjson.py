"""Stream-parse the commit NDJSON body: base64 file contents go to temp files, never all in memory.

A `file` line can be hundreds of MB of base64 in one JSON line. Lines up to `SMALL_LINE` bytes are
parsed with `json.loads`; a longer line is scanned for its `"content": "` string, whose characters
are decoded chunk by chunk into a temp file while sha256 and the git blob id are computed; the rest
of the line is then parsed as JSON with an empty content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.errors import InvalidRequest, PayloadTooLarge

SMALL_LINE = 1 << 20
_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')


@dataclass
class DecodedFile:
    """Content of a `file` line, decoded to `path` on disk."""

    path: Path
    sha256: str
    git_sha1: str
    size: int


@dataclass
class Line:
    value: dict[str, Any]
    content: DecodedFile | None = None


class _Base64Sink:
    """Decode base64 text arriving in pieces to a file; hash the decoded bytes."""

    def __init__(self, path: Path, max_size: int) -> None:
        self.path = path
        self._fh = path.open("wb")
        self._pending = b""
        self._chunks: list[bytes] = []
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._max = max_size

    def write(self, text: bytes) -> None:
        if b"\\" in text:
            text = text.replace(b"\\/", b"/")  # JSON may escape '/'; base64 has no other escapes
        data = self._pending + text
        cut = len(data) - len(data) % 4
        self._pending = data[cut:]
        if cut:
            try:
                raw = base64.b64decode(data[:cut], validate=True)
            except binascii.Error as exc:
                raise InvalidRequest(f"Invalid base64 content: {exc}") from None
            self.size += len(raw)
            if self.size > self._max:
                raise PayloadTooLarge(f"File larger than the maximum of {self._max} bytes")
            self._sha256.update(raw)
            self._fh.write(raw)

    def close(self) -> DecodedFile:
        if self._pending:
            raise InvalidRequest("Invalid base64 content: truncated")
        self._fh.close()
        # The git blob id needs the size up front, so it is a second pass over the (page-cached) file.
        sha1 = hashlib.sha1(b"blob %d\0" % self.size, usedforsecurity=False)
        with self.path.open("rb") as fh:
            while chunk := fh.read(4 << 20):
                sha1.update(chunk)
        return DecodedFile(self.path, self._sha256.hexdigest(), sha1.hexdigest(), self.size)

    def abort(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


def _decode_small(value: dict[str, Any], tmp: Path, max_size: int) -> DecodedFile:
    content = value.get("content")
    if not isinstance(content, str):
        raise InvalidRequest("A file line needs a base64 'content' string")
    if value.get("encoding", "base64") != "base64":
        raise InvalidRequest("Only base64 file encoding is supported")
    sink = _Base64Sink(tmp, max_size)
    try:
        sink.write(content.encode())
        return sink.close()
    except BaseException:
        sink.abort()
        raise


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Malformed NDJSON line: {exc}") from None
    if not isinstance(obj, dict) or "key" not in obj or not isinstance(obj.get("value"), dict):
        raise InvalidRequest("Each NDJSON line must be an object with 'key' and 'value'")
    return obj


async def parse_commit_stream(
    chunks: AsyncIterator[bytes], tmp_dir: Path, new_tmp: Any, max_size: int
) -> AsyncIterator[Line]:
    """Yield each line of the body; `file` lines come with their content decoded to a temp file."""
    buf = b""
    it = chunks.__aiter__()
    done = False
    while True:
        nl = buf.find(b"\n")
        if nl < 0 and not done and len(buf) < SMALL_LINE:
            try:
                buf += await it.__anext__()
            except StopAsyncIteration:
                done = True
            continue
        if nl >= 0:
            raw, buf = buf[:nl], buf[nl + 1 :]
            if raw.strip():
                yield _line(_loads(raw), new_tmp, max_size)
            continue
        if done:
            if buf.strip():
                yield _line(_loads(buf), new_tmp, max_size)
            return
        # A long line: stream its content string.
        line, buf, done = await _stream_long_line(buf, it, new_tmp(), max_size)
        yield line


def _line(obj: dict[str, Any], new_tmp: Any, max_size: int) -> Line:
    if obj["key"] == "file":
        return Line(obj, _decode_small(obj["value"], new_tmp(), max_size))
    return Line(obj)


async def _stream_long_line(
    buf: bytes, it: AsyncIterator[bytes], tmp: Path, max_size: int
) -> tuple[Line, bytes, bool]:
    done = False
    # Find the start of the content string, reading more if the key straddles chunks.
    while (m := _CONTENT_KEY.search(buf)) is None:
        if len(buf) > 2 * SMALL_LINE:
            raise InvalidRequest("NDJSON line too long and has no 'content' string")
        try:
            buf += await it.__anext__()
        except StopAsyncIteration:
            raise InvalidRequest("Truncated NDJSON body") from None
    prefix, rest = buf[: m.end()], buf[m.end() :]
    sink = _Base64Sink(tmp, max_size)
    try:
        while True:
            q = rest.find(b'"')
            if q >= 0:
                sink.write(rest[:q])
                rest = rest[q:]
                break
            # Keep a trailing backslash for the next chunk, so an escape is never split.
            keep = 1 if rest.endswith(b"\\") else 0
            sink.write(rest[: len(rest) - keep])
            rest = rest[len(rest) - keep :]
            try:
                rest += await it.__anext__()
            except StopAsyncIteration:
                raise InvalidRequest("Truncated NDJSON body") from None
        decoded = sink.close()
    except BaseException:
        sink.abort()
        raise
    # Read to the end of the line; what remains after the string is small.
    while (nl := rest.find(b"\n")) < 0 and not done:
        try:
            rest += await it.__anext__()
        except StopAsyncIteration:
            done = True
    if nl < 0:
        nl = len(rest)
    obj = _loads(prefix + rest[:nl])
    if obj["key"] != "file":
        decoded.path.unlink(missing_ok=True)
        raise InvalidRequest("Only 'file' lines may carry content")
    return Line(obj, decoded), rest[nl + 1 :], done
