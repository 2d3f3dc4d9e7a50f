from __future__ import annotations

from commons.hub.pointers import LfsPointer, parse_pointer


def test_round_trip() -> None:
    p = LfsPointer("a" * 64, 123)
    assert parse_pointer(p.encode()) == p
    assert p.encode() == b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 123\n"


def test_not_a_pointer() -> None:
    assert parse_pointer(b"hello") is None
    assert parse_pointer(b"version https://git-lfs.github.com/spec/v1\noid sha256:xyz\nsize 1\n") is None
    assert parse_pointer(b"x" * 2000) is None
