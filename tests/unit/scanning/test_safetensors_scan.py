"""Safetensors header validation: real files are valid and summarised, corrupted headers are flagged."""

from __future__ import annotations

import io
import json
import struct
from typing import Any, BinaryIO

import pytest

from commons.scanning import (
    SafetensorsError,
    ScanResult,
    Severity,
    read_safetensors_header,
    scan_file,
    scan_safetensors,
)

np = pytest.importorskip("numpy")
st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")


def real_file() -> tuple[bytes, dict[str, Any]]:
    tensors = {
        "model.embed.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "model.norm.weight": np.ones(4, dtype=np.float16),
        "model.ids": np.arange(5, dtype=np.int64),
        "model.mask": np.array([True, False, True]),
        "model.scalar": np.array(7, dtype=np.int8),
        "model.empty": np.zeros((0, 3), dtype=np.float32),
        "model.c": np.zeros(2, dtype=np.complex64),
    }
    return st_numpy.save(tensors, metadata={"format": "np", "note": "x"}), tensors


def build(header: dict[str, Any] | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def scan(data: bytes) -> ScanResult:
    return scan_safetensors(io.BytesIO(data), len(data), "model.safetensors")


def test_real_file_is_valid_and_summary_matches() -> None:
    data, tensors = real_file()
    header = read_safetensors_header(io.BytesIO(data))
    assert header.metadata == {"format": "np", "note": "x"}
    assert set(header.names) == set(tensors)
    assert header.parameter_count == sum(int(t.size) for t in tensors.values())
    dtypes = {"float32": "F32", "float16": "F16", "int64": "I64", "bool": "BOOL", "int8": "I8", "complex64": "C64"}
    for t in header.tensors:
        arr = tensors[t.name]
        assert t.shape == arr.shape and t.dtype == dtypes[str(arr.dtype)] and t.n_params == arr.size
        start = header.data_offset + t.begin
        assert data[start : start + t.n_bytes] == arr.tobytes()
    assert header.parameters_by_dtype["F32"] == 12
    result = scan(data)
    assert result.ok and not result.findings and result.scanner == "safetensors"


def test_torch_bf16_file_and_scan_file_reads_only_the_header() -> None:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    data = st_torch.save(
        {"w": torch.zeros(256, 1024, dtype=torch.bfloat16), "b": torch.zeros(8, dtype=torch.float8_e4m3fn)}
    )

    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, n: int | None = -1) -> bytes:
            out = super().read(n)
            self.read_bytes += len(out)
            return out

    fh = Counting(data)
    result = scan_file("model.safetensors", fh, len(data))
    assert result is not None and result.ok
    header = read_safetensors_header(io.BytesIO(data))
    assert fh.read_bytes < 8 + header.header_size + 16 < len(data) // 100
    assert header.parameters_by_dtype == {"BF16": 256 * 1024, "F8_E4M3": 8}


def _entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


CORRUPT: list[tuple[str, bytes, str]] = [
    ("empty file", b"", "invalid-header"),
    ("short prefix", b"\x01\x00", "invalid-header"),
    ("huge header length", build({}, length=2**63), "invalid-header"),
    ("header over 100 MB", build({}, length=100_000_001), "invalid-header"),
    ("header past end of file", build({}, length=50), "invalid-header"),
    ("bad JSON", build(b'{"a": '), "invalid-header"),
    ("NaN", build(b'{"a": NaN}'), "invalid-header"),
    ("not an object", build(b"[1, 2]"), "invalid-header"),
    ("not UTF-8", build(b'{"\xff": 1}'), "invalid-header"),
    ("deep nesting", build(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "invalid-header"),
    ("bad dtype", build({"t": _entry("F33", [1], 0, 4)}, bytes(4)), "invalid-dtype"),
    ("dtype not a string", build({"t": _entry(3, [1], 0, 4)}, bytes(4)), "invalid-dtype"),  # type: ignore[arg-type]
    ("negative dim", build({"t": _entry("F32", [-1], 0, 4)}, bytes(4)), "invalid-shape"),
    ("float dim", build({"t": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}, bytes(4)), "invalid-shape"),
    ("bool dim", build({"t": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)), "invalid-shape"),
    ("missing offsets", build({"t": {"dtype": "F32", "shape": [1]}}, bytes(4)), "invalid-offsets"),
    ("offsets reversed", build({"t": _entry("F32", [0], 4, 0)}, bytes(4)), "out-of-bounds"),
    ("out of bounds", build({"t": _entry("F32", [2], 0, 8)}, bytes(4)), "out-of-bounds"),
    ("wrong length", build({"t": _entry("F32", [2], 0, 4)}, bytes(4)), "size-mismatch"),
    ("sub-byte not aligned", build({"t": _entry("F4", [3], 0, 2)}, bytes(2)), "size-mismatch"),
    (
        "overlap",
        build({"a": _entry("F32", [2], 0, 8), "b": _entry("F32", [2], 4, 12)}, bytes(12)),
        "overlap",
    ),
    (
        "same range twice",
        build({"a": _entry("U8", [4], 0, 4), "b": _entry("U8", [4], 0, 4)}, bytes(4)),
        "overlap",
    ),
    ("duplicate key", build(b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {}}', b"\0"),
     "duplicate-key"),
    ("metadata not str->str", build({"__metadata__": {"a": 1}}), "invalid-metadata"),
    ("entry not an object", build({"t": [1, 2]}), "invalid-tensor"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "kind"), [(d, k) for _, d, k in CORRUPT], ids=[i for i, _, _ in CORRUPT])
def test_corrupted_headers_are_critical(data: bytes, kind: str) -> None:
    result = scan(data)
    assert result.worst is Severity.CRITICAL, result
    assert kind in {f.kind for f in result.findings}, result
    with pytest.raises(SafetensorsError):
        read_safetensors_header(io.BytesIO(data), len(data))


@pytest.mark.parametrize(("data", "kind"), [(d, k) for _, d, k in CORRUPT], ids=[i for i, _, _ in CORRUPT])
def test_reference_loader_agrees(data: bytes, kind: str) -> None:
    if kind == "duplicate-key":
        pytest.skip("serde keeps the last duplicate; we refuse the ambiguity on purpose")
    with pytest.raises(Exception):  # noqa: B017 - any refusal by the Rust loader will do
        safetensors.deserialize(data)


def test_gaps_and_trailing_bytes_are_warnings() -> None:
    gap = build({"a": _entry("U8", [1], 1, 2)}, bytes(2))
    trailing = build({"a": _entry("U8", [1], 0, 1)}, bytes(3))
    for data, kind in ((gap, "gap"), (trailing, "trailing-data")):
        result = scan(data)
        assert result.worst is Severity.WARNING and kind in {f.kind for f in result.findings}
        read_safetensors_header(io.BytesIO(data))  # warnings do not raise
    extra = build({"a": {**_entry("U8", [1], 0, 1), "note": 1}}, b"\0")
    assert scan(extra).findings[0].kind == "unknown-field"


def test_edge_cases_that_are_valid() -> None:
    for data in (
        build({}),
        build(b"{}      "),  # header padded with spaces, as writers do for alignment
        build(b" \n{}"),  # leading whitespace: the reference loader accepts it
        build({"s": _entry("F32", [], 0, 4)}, bytes(4)),  # a scalar
        build({"z": _entry("F32", [0, 5], 0, 0), "a": _entry("U8", [1], 0, 1)}, b"\0"),  # zero-size tensor
        build({"f4": _entry("F4", [4], 0, 2), "f6": _entry("F6_E2M3", [4], 2, 5)}, bytes(5)),
    ):
        assert scan(data).ok, data
        safetensors.deserialize(data)


def test_size_is_taken_from_the_file_when_not_given() -> None:
    data, _ = real_file()

    class NoSize(io.BytesIO):
        pass

    fh: BinaryIO = NoSize(data)
    assert (
        read_safetensors_header(fh).data_size == len(data) - 8 - read_safetensors_header(io.BytesIO(data)).header_size
    )
