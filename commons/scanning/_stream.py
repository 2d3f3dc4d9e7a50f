"""A bounded, buffered, forward-only reader over a region of a binary file object.

Every length read from a hostile file is checked against what is left before anything is read or
allocated, so a claimed 2**63-byte string costs nothing; large payloads are skipped with `seek`.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

_CHUNK = 1 << 16


class Truncated(Exception):
    """The region ended (or the file returned less than it should) before a read completed."""


class ByteStream:
    """Sequential reads from `fh` between `start` and `end` (None: until EOF)."""

    def __init__(self, fh: BinaryIO, start: int | None = 0, end: int | None = None) -> None:
        self._fh = fh
        if start is not None:
            fh.seek(start)
        self.pos = start if start is not None else 0  # logical offset of the next byte to hand out
        self._origin = self.pos
        self.end = end
        self._buf = b""
        self._idx = 0
        try:
            self._can_seek = fh.seekable()
        except (OSError, ValueError, AttributeError):
            self._can_seek = False

    @property
    def offset(self) -> int:
        """Bytes consumed since the start of the region."""
        return self.pos - self._origin

    def remaining(self) -> int | None:
        """Bytes left in the region, or None when the end is unknown."""
        return None if self.end is None else self.end - self.pos

    def _fill(self) -> bool:
        want = _CHUNK if self.end is None else min(_CHUNK, self.end - self.pos - (len(self._buf) - self._idx))
        if want <= 0:
            return False
        data = self._fh.read(want)
        if not data:
            return False
        self._buf = self._buf[self._idx :] + data
        self._idx = 0
        return True

    def read(self, n: int) -> bytes:
        """Exactly `n` bytes, or `Truncated`; callers keep `n` small (the buffer is built in memory)."""
        if n < 0 or (self.end is not None and self.pos + n > self.end):
            raise Truncated(f"needs {n} bytes at offset {self.offset}, region ends first")
        while len(self._buf) - self._idx < n:
            if not self._fill():
                raise Truncated(f"needs {n} bytes at offset {self.offset}, file ends first")
        out = self._buf[self._idx : self._idx + n]
        self._idx += n
        self.pos += n
        return out

    def read1(self) -> int:
        """One byte as an int, or -1 at the end of the region."""
        if self._idx < len(self._buf):
            b = self._buf[self._idx]
            self._idx += 1
            self.pos += 1
            return b
        if (self.end is not None and self.pos >= self.end) or not self._fill():
            return -1
        return self.read1()

    def peek(self, n: int) -> bytes:
        """Up to `n` upcoming bytes without consuming them."""
        while len(self._buf) - self._idx < n and self._fill():
            pass
        return self._buf[self._idx : self._idx + n]

    def skip(self, n: int) -> None:
        """Move forward `n` bytes without keeping them (seeks when it can)."""
        if n < 0 or (self.end is not None and self.pos + n > self.end):
            raise Truncated(f"skips {n} bytes at offset {self.offset}, region ends first")
        buffered = len(self._buf) - self._idx
        if n <= buffered:
            self._idx += n
            self.pos += n
            return
        rest = n - buffered
        self._buf, self._idx = b"", 0
        if self._can_seek and self.end is not None:
            # The region end was checked above, so this seek cannot leave the region.
            self._fh.seek(rest, 1)
        else:
            while rest:
                data = self._fh.read(min(rest, 1 << 20))
                if not data:
                    raise Truncated(f"skips {n} bytes at offset {self.offset}, file ends first")
                rest -= len(data)
        self.pos += n

    def readline(self, keep: int) -> tuple[bytes | None, bool]:
        """Consume up to and including the next newline.

        Returns (line without the newline, or None when it was longer than `keep` bytes and
        was skipped; whether a newline ended it). At the end of the region the remainder is
        returned with False, as `pickle._Unpickler.readline` does; a caller that needs C
        `_pickle` strictness raises on that.
        """
        kept = True
        while True:
            nl = self._buf.find(b"\n", self._idx)
            if nl >= 0:
                line = self._buf[self._idx : nl] if kept and nl - self._idx <= keep else None
                self.pos += nl + 1 - self._idx
                self._idx = nl + 1
                return line, True
            if len(self._buf) - self._idx > keep:
                # Too long to keep: drop what is buffered and keep looking for the newline.
                kept = False
                self.pos += len(self._buf) - self._idx
                self._buf, self._idx = b"", 0
            if not self._fill():
                rest = self._buf[self._idx :] if kept else None
                self.pos += len(self._buf) - self._idx
                self._buf, self._idx = b"", 0
                return rest, False

    def skip_prefixed(self, count: int, prefix: struct.Struct, max_len: int) -> None:
        """Skip `count` length-prefixed blobs (e.g. GGUF string arrays) without a method call per byte."""
        while count > 0:
            if len(self._buf) - self._idx < prefix.size and not self._fill():
                raise Truncated(f"length prefix at offset {self.offset} runs past the end")
            if len(self._buf) - self._idx < prefix.size:
                continue  # _fill appended a little; loop until the prefix is whole
            (n,) = prefix.unpack_from(self._buf, self._idx)
            if n > max_len:
                raise Truncated(f"blob of {n} bytes at offset {self.offset} exceeds the {max_len}-byte limit")
            total = prefix.size + n
            if len(self._buf) - self._idx >= total:
                self._idx += total
                self.pos += total
            else:
                self.skip(total)
            count -= 1
