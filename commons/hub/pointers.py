"""Git LFS pointer files (spec v1): what git stores in place of a large file (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

SPEC = "https://git-lfs.github.com/spec/v1"
MAX_POINTER_SIZE = 1024
_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")


@dataclass(frozen=True)
class LfsPointer:
    sha256: str
    size: int

    def encode(self) -> bytes:
        return f"version {SPEC}\noid sha256:{self.sha256}\nsize {self.size}\n".encode()


def parse_pointer(data: bytes) -> LfsPointer | None:
    if len(data) > MAX_POINTER_SIZE:
        return None
    match = _POINTER.match(data)
    if not match:
        return None
    return LfsPointer(match.group(1).decode(), int(match.group(2)))
