"""HTTP Range header parsing (single ranges, as clients send them)."""

from __future__ import annotations


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for `bytes=a-b`, `bytes=a-`, `bytes=-n`; None means the whole body."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown units and multi-range: answer 200 with everything (allowed by RFC 9110)
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise RangeNotSatisfiable
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or start < 0 or end < start:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)
