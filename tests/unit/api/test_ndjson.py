from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commons.api.hf.ndjson import Line, parse_commit_stream
from commons.errors import InvalidRequest, PayloadTooLarge


def _body(big: bytes, small: bytes, slash_escape: bool = False) -> bytes:
    lines = [
        {"key": "header", "value": {"summary": "x"}},
        {"key": "file", "value": {"content": base64.b64encode(big).decode(), "path": "big.bin", "encoding": "base64"}},
        {"key": "file", "value": {"path": "c.json", "encoding": "base64", "content": base64.b64encode(small).decode()}},
        {"key": "deletedFile", "value": {"path": "x"}},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if slash_escape:
        text = text.replace("/", "\\/")
    return text.encode()


def _parse(body: bytes, chunk: int, tmp: Path, max_size: int = 1 << 30) -> list[Line]:
    counter = itertools.count()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), chunk):
            yield body[i : i + chunk]

    async def run() -> list[Line]:
        return [x async for x in parse_commit_stream(chunks(), tmp, lambda: tmp / f"f{next(counter)}", max_size)]

    return asyncio.run(run())


@pytest.mark.parametrize("chunk", [7, 4096, 65536, 1 << 24])
@pytest.mark.parametrize("escaped", [False, True])
def test_streamed_and_small_lines(tmp_path: Path, chunk: int, escaped: bool) -> None:
    big, small = os.urandom(2_500_001), b'{"a": 1}'
    lines = _parse(_body(big, small, escaped), chunk, tmp_path)
    assert [line.value["key"] for line in lines] == ["header", "file", "file", "deletedFile"]
    content = lines[1].content
    assert content is not None and content.size == len(big)
    assert content.sha256 == hashlib.sha256(big).hexdigest()
    assert content.git_sha1 == hashlib.sha1(b"blob %d\0" % len(big) + big).hexdigest()
    assert content.path.read_bytes() == big and lines[1].value["value"]["path"] == "big.bin"
    assert lines[2].content is not None and lines[2].content.path.read_bytes() == small


def test_bad_base64(tmp_path: Path) -> None:
    body = b'{"key": "file", "value": {"path": "a", "content": "@@@@"}}\n'
    with pytest.raises(InvalidRequest):
        _parse(body, 100, tmp_path)


def test_malformed_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        _parse(b"not json\n", 100, tmp_path)


def test_size_limit(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        _parse(_body(os.urandom(3_000_000), b"x"), 65536, tmp_path, max_size=1_000_000)
    assert not any(tmp_path.iterdir())  # the partial file was removed
