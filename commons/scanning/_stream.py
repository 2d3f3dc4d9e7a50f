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

    def readline(self, keep: int, within: int | None = None) -> tuple[bytes | None, bool]:
        """Consume up to and including the next newline.

        Returns (line without the newline, or None when it was longer than `keep` bytes and
        was skipped; whether a newline ended it). At the end of the region the remainder is
        returned with False, as `pickle._Unpickler.readline` does; a caller that needs C
        `_pickle` strictness raises on that. With `within`, only that many bytes are searched:
        if they hold no newline they are consumed and (None, False) is returned.
        """
        kept = True  # False once the start of the line has been dropped
        budget = within
        while True:
            buffered = len(self._buf) - self._idx
            span = buffered if budget is None else min(buffered, budget)
            nl = self._buf.find(b"\n", self._idx, self._idx + span)
            if nl >= 0:
                length = nl - self._idx
                line = self._buf[self._idx : nl] if kept and length <= keep else None
                self.pos += length + 1
                self._idx = nl + 1
                return line, True
            if budget is not None and span == budget:
                self.pos += span
                self._idx += span
                return None, False
            if span > keep:
                # Too long to keep: drop what was searched and keep looking for the newline.
                kept = False
                self.pos += span
                self._idx += span
                if budget is not None:
                    budget -= span
            if not self._fill():
                rest = self._buf[self._idx :] if kept else None
                self.pos += len(self._buf) - self._idx
                self._buf, self._idx = b"", 0
                return (None, False) if within is not None else (rest, False)

    def frame(self, n: int) -> None:
        """A pickle FRAME of `n` bytes starts here: only a read-ahead hint for a linear reader."""

    def finish(self) -> None:
        """One pickle ended: nothing to do for a linear reader."""

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


class DroppingView(ByteStream):
    """Reads a stream the way C `_pickle` reads a file object that has no `peek()` (io.BytesIO,
    which is what torch.load hands the unpickler for a zip's data.pkl).

    C `_pickle` keeps the last chunk it read (a whole FRAME, or one argument) in a buffer. A read
    that does not fit in what is left of that buffer does not continue into the frame's last
    bytes: it drops them and reads fresh bytes from the file position, i.e. the end of the buffer.
    A linear parser and this reader then see different opcodes in one file. `diverged` records
    that it happened (pickles written by `pickle` never do it), so that the caller can walk the
    stream linearly as well.
    """

    def __init__(self, fh: BinaryIO, start: int | None = 0, end: int | None = None) -> None:
        super().__init__(fh, start, end)
        self.buf_end = self.pos  # logical offset where C's buffer ends (= the file position)
        self.diverged = False

    def _drop(self, n: int) -> None:
        avail = self.buf_end - self.pos
        if n > avail:
            if avail > 0:
                self.diverged = True
                super().skip(avail)
            self.buf_end = self.pos + n  # what the fresh read will cover

    def read(self, n: int) -> bytes:
        self._drop(n)
        return super().read(n)

    def read1(self) -> int:
        pos = self.pos
        if pos >= self.buf_end:
            self.buf_end = pos + 1
        idx = self._idx
        if idx < len(self._buf):  # inlined fast path: this runs once per opcode
            self._idx = idx + 1
            self.pos = pos + 1
            return self._buf[idx]
        return super().read1()

    def skip(self, n: int) -> None:
        if n > self.buf_end - self.pos:
            self._drop(n)
        pos, idx = self.pos, self._idx
        if 0 <= n <= len(self._buf) - idx and (self.end is None or pos + n <= self.end):
            self._idx = idx + n
            self.pos = pos + n
            return
        super().skip(n)

    def readline(self, keep: int, within: int | None = None) -> tuple[bytes | None, bool]:
        avail = self.buf_end - self.pos
        if avail > 0:
            line, complete = super().readline(keep, within=avail)
            if complete:
                return line, True
            self.diverged = True  # no newline in the buffer: C drops its rest and reads a line from the file
        out = super().readline(keep)
        self.buf_end = self.pos
        return out

    def frame(self, n: int) -> None:
        avail = max(0, self.buf_end - self.pos)
        if n > avail:
            left = self.remaining()
            if left is not None and n > left - avail:
                self.diverged = True  # a linear reader would go on
                raise Truncated("FRAME is longer than the data left")  # C: "pickle data was truncated"
            self._drop(n)

    def finish(self) -> None:
        # The next pickle.load() on the same file starts at the file position, i.e. after the buffer.
        avail = self.buf_end - self.pos
        if avail > 0:
            self.diverged = True
            super().skip(avail)
