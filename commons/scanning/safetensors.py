"""Safetensors header validation and summary; reads the 8-byte length and the JSON header, never the data.

Rules follow the reference (Rust) implementation: header length <= 100 MB and inside the file,
a UTF-8 JSON object, known dtypes, non-negative integer shapes, `data_offsets` whose length
is exactly `numel * bits / 8` bytes, all inside the data section, no overlaps, and a `__metadata__`
of str -> str. The reference loader also refuses gaps and trailing bytes; those are warnings here
(harmless for safety, but the file will not load there). Duplicate JSON keys, which serde accepts
silently (last one wins) while other readers may keep the first, are critical: two readers would
see different tensors.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from commons.scanning.findings import Finding, ScanResult, Severity

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "SafetensorsError",
    "SafetensorsHeader",
    "SafetensorsTensor",
    "read_safetensors_header",
    "scan_safetensors",
]

MAX_HEADER_SIZE = 100_000_000  # the Rust crate's limit
MAX_DIMS = 64  # no real tensor needs more; bounds the work per entry

#: Element size in bits of every dtype the reference implementation accepts.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}  # fmt: skip


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file; the message says why."""


@dataclass(frozen=True)
class SafetensorsTensor:
    """One tensor entry; offsets are relative to the start of the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def n_params(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def n_bytes(self) -> int:
        """Size of the tensor's data."""
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """What the header says: the "safetensors inspector" view of a file."""

    header_size: int  # length of the JSON header (the 8-byte prefix excluded)
    data_size: int  # bytes after the header
    metadata: dict[str, str]
    tensors: tuple[SafetensorsTensor, ...] = field(default=())

    @property
    def data_offset(self) -> int:
        """Absolute file offset where the data section begins."""
        return 8 + self.header_size

    @property
    def names(self) -> tuple[str, ...]:
        """Tensor names in file order of their data."""
        return tuple(t.name for t in self.tensors)

    @property
    def parameter_count(self) -> int:
        """Total number of elements over all tensors."""
        return sum(t.n_params for t in self.tensors)

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        """Element counts per dtype, e.g. {"BF16": 1_235_814_400}."""
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.dtype] = out.get(t.dtype, 0) + t.n_params
        return out


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_uint(v: object) -> bool:
    return type(v) is int and v >= 0


def _check(fh: BinaryIO, size: int | None) -> tuple[SafetensorsHeader | None, list[Finding]]:
    """Validate; returns the summary (None when the header is unusable) and every problem found."""
    findings: list[Finding] = []

    def bad(kind: str, message: str, detail: str | None = None) -> None:
        findings.append(Finding(kind, Severity.CRITICAL, message, detail))

    if size is None:
        size = fh.seek(0, 2)
    fh.seek(0)
    prefix = fh.read(8)
    if len(prefix) < 8:
        bad("invalid-header", f"file is {len(prefix)} bytes, shorter than the 8-byte header length")
        return None, findings
    (n,) = struct.unpack("<Q", prefix)
    if n > MAX_HEADER_SIZE:
        bad("invalid-header", f"header length {n} exceeds the {MAX_HEADER_SIZE}-byte limit")
        return None, findings
    if 8 + n > size:
        bad("invalid-header", f"header length {n} runs past the end of the {size}-byte file")
        return None, findings
    raw = fh.read(n)
    if len(raw) < n:
        bad("invalid-header", f"file ended after {len(raw)} of {n} header bytes")
        return None, findings
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad("invalid-header", f"header is not UTF-8: {exc}")
        return None, findings
    if not text.lstrip(" \t\r\n").startswith("{"):
        bad("invalid-header", "header is not a JSON object")
        return None, findings
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _Duplicate as exc:
        bad("duplicate-key", f"header repeats the key {exc.args[0]!r}; readers disagree on which one counts")
        return None, findings
    except (ValueError, RecursionError) as exc:
        bad("invalid-header", f"header is not valid JSON: {exc}")
        return None, findings
    if not isinstance(doc, dict):
        bad("invalid-header", "header is not a JSON object")
        return None, findings

    data_size = size - 8 - n
    metadata: dict[str, str] = {}
    meta = doc.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            bad("invalid-metadata", "__metadata__ must map strings to strings")
        else:
            metadata = meta

    tensors: list[SafetensorsTensor] = []
    for name, info in doc.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            bad("invalid-tensor", f"{where}: entry is not an object")
            continue
        extra = sorted(set(info) - {"dtype", "shape", "data_offsets"})
        if extra:
            findings.append(Finding("unknown-field", Severity.WARNING, f"{where}: unknown fields {extra[:5]}"))
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            bad("invalid-dtype", f"{where}: unknown dtype {str(dtype)[:40]!r}")
            continue
        if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_uint(d) for d in shape):
            bad("invalid-shape", f"{where}: shape must be a list of at most {MAX_DIMS} non-negative integers")
            continue
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)):
            bad("invalid-offsets", f"{where}: data_offsets must be two non-negative integers")
            continue
        begin, end = offsets
        if begin > end or end > data_size:
            bad("out-of-bounds", f"{where}: data_offsets [{begin}, {end}] outside the {data_size}-byte data section")
            continue
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            bad("size-mismatch", f"{where}: {dtype}{shape} needs {bits / 8:g} bytes, data_offsets give {end - begin}")
            continue
        tensors.append(SafetensorsTensor(name, dtype, tuple(shape), begin, end))

    tensors.sort(key=lambda t: (t.begin, t.end))
    covered = 0
    previous: SafetensorsTensor | None = None
    for t in tensors:
        if t.begin < covered and t.n_bytes and previous is not None:
            bad("overlap", f"tensors {previous.name!r} and {t.name!r} share bytes",
                f"[{previous.begin}, {previous.end}) and [{t.begin}, {t.end})")  # fmt: skip
        elif t.begin > covered:
            findings.append(Finding("gap", Severity.WARNING, f"{t.begin - covered} unused bytes before {t.name!r}",
                                    "the reference loader refuses files with gaps"))  # fmt: skip
        if t.end >= covered:
            covered, previous = t.end, t
    if covered < data_size and not any(f.severity is Severity.CRITICAL for f in findings):
        findings.append(Finding("trailing-data", Severity.WARNING,
                                f"{data_size - covered} bytes after the last tensor are not described by the header",
                                "the reference loader refuses such files"))  # fmt: skip
    return SafetensorsHeader(n, data_size, metadata, tuple(tensors)), findings


def read_safetensors_header(fh: BinaryIO, size: int | None = None) -> SafetensorsHeader:
    """Parse and validate the header; raises `SafetensorsError` on anything the reference loader would reject.

    Warnings (gaps, unknown fields) do not raise. `size` defaults to seeking to the end of `fh`.
    """
    header, findings = _check(fh, size)
    fatal = [f for f in findings if f.severity is Severity.CRITICAL]
    if fatal or header is None:
        raise SafetensorsError(fatal[0].message if fatal else "invalid safetensors file")
    return header


def scan_safetensors(fh: BinaryIO, size: int | None = None, path: str = "") -> ScanResult:
    """Validate the header and report every problem as a finding; never raises on bad input."""
    try:
        _, findings = _check(fh, size)
    except Exception as exc:  # the scanner must answer, whatever the bytes
        findings = [Finding("scanner-error", Severity.CRITICAL, f"scan failed: {type(exc).__name__}: {exc}")]
    return ScanResult(path=path, scanner="safetensors", findings=tuple(findings[:100]))
