"""GGUF header parsing and validation with the standard library only (the server must not import numpy).

Layout (v2/v3): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count, the metadata
key/value pairs, the tensor infos (name, u32 n_dims, u64 dims, u32 ggml type, u64 offset), then
padding to `general.alignment` (default 32) and the tensor data. Everything is bounds-checked
against the file size before it is read; counts that could not fit in the file are refused up
front, so a hostile header costs at most one pass over its own bytes. Rules follow llama.cpp's
loader: no duplicate keys or tensor names, no nested arrays, at most 4 dims, known types, aligned
offsets inside the file, no overlapping tensor data.

One content check rides along: a `tokenizer.chat_template` that reaches for dunder attributes
(`__class__`, `__globals__`, ...) is the known server-side template injection against GGUF
loaders that render templates unsandboxed, and is critical.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from commons.scanning._stream import ByteStream, Truncated
from commons.scanning.findings import Finding, ScanResult, Severity

__all__ = [
    "GGML_TYPES",
    "GgufArray",
    "GgufError",
    "GgufHeader",
    "GgufLimits",
    "GgufTensor",
    "GgufValue",
    "read_gguf_header",
    "scan_gguf",
]

MAGIC = b"GGUF"
MAX_DIMS = 4
MAX_TENSOR_NAME = 64  # GGML_MAX_NAME, terminating NUL included in llama.cpp
ARRAY_PREVIEW = 16  # array items kept for display

#: ggml type id -> (name, elements per block, bytes per block); from ggml.h / gguf-py.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}  # fmt: skip

# value type id -> (name, struct code or None for string/array)
_VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("uint8", "B"), 1: ("int8", "b"), 2: ("uint16", "H"), 3: ("int16", "h"), 4: ("uint32", "I"),
    5: ("int32", "i"), 6: ("float32", "f"), 7: ("bool", "?"), 8: ("string", None), 9: ("array", None),
    10: ("uint64", "Q"), 11: ("int64", "q"), 12: ("float64", "d"),
}  # fmt: skip
_STRING, _ARRAY = 8, 9

_DUNDER_TEMPLATE = re.compile(r"__[A-Za-z]+__")


class GgufError(ValueError):
    """The file is not a valid GGUF file; the message says why."""


@dataclass(frozen=True)
class GgufLimits:
    """Bounds on hostile headers; real files (150k-entry vocabularies) stay far below them."""

    max_string: int = 64 << 20  # one metadata string (chat templates, licences)
    max_key: int = 65536
    max_items: int = 5_000_000  # strings in metadata arrays over the whole header (~1-2 s to walk)
    max_header: int = 1 << 30  # bytes of header walked


@dataclass(frozen=True)
class GgufArray:
    """A metadata array, truncated to its first `ARRAY_PREVIEW` items for display."""

    item_type: str
    length: int
    head: tuple[int | float | bool | str, ...]


GgufValue = int | float | bool | str | GgufArray


@dataclass(frozen=True)
class GgufTensor:
    """One tensor info; `offset` is relative to the start of the data section."""

    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] (fastest varying) first
    ggml_type: str
    offset: int
    n_bytes: int

    @property
    def n_params(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class GgufHeader:
    """The parsed header."""

    version: int
    byte_order: str  # "little" or "big"
    alignment: int
    data_offset: int  # absolute offset of the data section
    metadata: dict[str, GgufValue] = field(default_factory=dict)
    tensors: tuple[GgufTensor, ...] = ()

    @property
    def parameter_count(self) -> int:
        """Total number of elements over all tensors."""
        return sum(t.n_params for t in self.tensors)

    @property
    def architecture(self) -> str | None:
        """`general.architecture`, when it is a string."""
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None


class _Fatal(Exception):
    """Parsing cannot continue; the message names the problem."""


class _Parser:
    def __init__(self, fh: BinaryIO, size: int, limits: GgufLimits) -> None:
        self.src = ByteStream(fh, 0, size)
        self.size = size
        self.limits = limits
        self.bo = "<"
        self.items = 0
        self.findings: list[Finding] = []
        self._structs: dict[str, struct.Struct] = {}

    def warn(self, kind: str, message: str, severity: Severity = Severity.WARNING) -> None:
        if len(self.findings) < 100:
            self.findings.append(Finding(kind, severity, message))

    def unpack(self, code: str) -> int | float | bool:
        fmt = self._structs.get(code)
        if fmt is None:
            fmt = self._structs[code] = struct.Struct(self.bo + code)
        value: int | float | bool = fmt.unpack(self.src.read(fmt.size))[0]
        return value

    def u32(self) -> int:
        return int(self.unpack("I"))

    def u64(self) -> int:
        return int(self.unpack("Q"))

    def string(self, cap: int, what: str) -> str:
        n = self.u64()
        if n > cap:
            raise _Fatal(f"{what} is {n} bytes long (limit {cap})")
        left = self.src.remaining()
        if left is not None and n > left:
            raise _Fatal(f"{what} claims {n} bytes, only {left} left in the file")
        return self.src.read(n).decode("utf-8", "replace")

    def value(self, vtype: int, key: str) -> GgufValue:
        if vtype not in _VALUE_TYPES:
            raise _Fatal(f"metadata {key!r} has unknown value type {vtype}")
        if vtype == _STRING:
            return self.string(self.limits.max_string, f"metadata {key!r}")
        if vtype == _ARRAY:
            return self.array(key)
        return self.unpack(_VALUE_TYPES[vtype][1] or "")

    def array(self, key: str) -> GgufArray:
        itype = self.u32()
        n = self.u64()
        if itype == _ARRAY:
            raise _Fatal(f"metadata {key!r} is a nested array, which GGUF readers do not support")
        if itype not in _VALUE_TYPES:
            raise _Fatal(f"metadata {key!r} is an array of unknown type {itype}")
        name, code = _VALUE_TYPES[itype]
        item_size = 8 if itype == _STRING else struct.calcsize(code or "")
        left = self.src.remaining() or 0
        if n * item_size > left:
            raise _Fatal(f"metadata {key!r} claims {n} items, more than the file can hold")
        head: list[int | float | bool | str] = []
        if itype == _STRING:
            # Strings must be walked one by one (numeric arrays are skipped in one seek), so they are counted.
            self.items += n
            if self.items > self.limits.max_items:
                raise _Fatal(f"more than {self.limits.max_items} strings in metadata arrays")
            shown = min(n, ARRAY_PREVIEW)
            head.extend(self.string(self.limits.max_string, f"metadata {key!r}[{i}]") for i in range(shown))
            self.src.skip_prefixed(n - shown, struct.Struct(self.bo + "Q"), self.limits.max_string)
        else:
            shown = min(n, ARRAY_PREVIEW)
            fmt = struct.Struct(f"{self.bo}{shown}{code}")
            head.extend(fmt.unpack(self.src.read(fmt.size)))
            self.src.skip((n - shown) * item_size)
        return GgufArray(name, n, tuple(head))

    def parse(self) -> GgufHeader:
        magic = self.src.read(4)
        if magic != MAGIC:
            raise _Fatal(f"bad magic {magic!r}, expected {MAGIC!r}")
        raw_version = self.src.read(4)
        version = int.from_bytes(raw_version, "little")
        if version not in (2, 3) and int.from_bytes(raw_version, "big") in (2, 3):
            self.bo, version = ">", int.from_bytes(raw_version, "big")
        if version not in (2, 3):
            raise _Fatal(f"unsupported GGUF version {version}")
        n_tensors, n_kv = self.u64(), self.u64()
        # Smallest possible entries: kv = 8 (key len) + 4 (type) + 1; tensor = 8 + 4 + 4 + 8.
        if n_kv * 13 + n_tensors * 24 > self.size - 24:
            raise _Fatal(f"{n_tensors} tensors and {n_kv} metadata entries cannot fit in a {self.size}-byte file")

        metadata: dict[str, GgufValue] = {}
        for _ in range(n_kv):
            key = self.string(self.limits.max_key, "metadata key")
            vtype = self.u32()
            val = self.value(vtype, key)
            if key in metadata:
                raise _Fatal(f"duplicate metadata key {key!r}")
            metadata[key] = val
            if self.src.offset > self.limits.max_header:
                raise _Fatal(f"header longer than {self.limits.max_header} bytes")

        alignment = 32
        if "general.alignment" in metadata:
            al = metadata["general.alignment"]
            if type(al) is not int or al <= 0 or al & (al - 1):
                raise _Fatal(f"general.alignment {al!r} is not a positive power of two")
            alignment = al

        infos: list[tuple[str, tuple[int, ...], int, int]] = []
        names: set[str] = set()
        for _ in range(n_tensors):
            name = self.string(self.limits.max_key, "tensor name")
            if len(name.encode()) >= MAX_TENSOR_NAME:
                self.warn("long-tensor-name", f"tensor name {name[:80]!r} is {len(name)} bytes; llama.cpp allows 63")
            if name in names:
                raise _Fatal(f"duplicate tensor name {name!r}")
            names.add(name)
            n_dims = self.u32()
            if n_dims > MAX_DIMS:
                raise _Fatal(f"tensor {name!r} has {n_dims} dims (max {MAX_DIMS})")
            dims = tuple(self.u64() for _ in range(n_dims))
            ttype = self.u32()
            offset = self.u64()
            infos.append((name, dims, ttype, offset))

        data_offset = -(-self.src.pos // alignment) * alignment
        if data_offset > self.size:
            raise _Fatal("file ends inside the header padding")
        data_size = self.size - data_offset
        tensors: list[GgufTensor] = []
        for name, dims, ttype, offset in infos:
            if ttype not in GGML_TYPES:
                raise _Fatal(f"tensor {name!r} has unknown ggml type {ttype}")
            tname, block, type_size = GGML_TYPES[ttype]
            if dims and dims[0] % block:
                raise _Fatal(f"tensor {name!r}: first dim {dims[0]} is not a multiple of the {tname} block ({block})")
            n_elems = math.prod(dims)
            if n_elems >= 1 << 63:
                raise _Fatal(f"tensor {name!r} has more than 2**63 elements")
            n_bytes = n_elems // block * type_size
            if offset % alignment:
                raise _Fatal(f"tensor {name!r} offset {offset} is not a multiple of the alignment {alignment}")
            if offset + n_bytes > data_size:
                raise _Fatal(f"tensor {name!r} data [{offset}, {offset + n_bytes}) lies outside the "
                             f"{data_size}-byte data section")  # fmt: skip
            tensors.append(GgufTensor(name, dims, tname, offset, n_bytes))

        end = 0
        previous = ""
        for t in sorted(tensors, key=lambda t: t.offset):
            if t.offset < end and t.n_bytes:
                raise _Fatal(f"tensors {previous!r} and {t.name!r} overlap")
            if t.offset + t.n_bytes >= end:
                end, previous = t.offset + t.n_bytes, t.name

        template = metadata.get("tokenizer.chat_template")
        if isinstance(template, str):
            dunders = sorted(set(_DUNDER_TEMPLATE.findall(template)))
            if dunders:
                self.warn("suspicious-chat-template",
                          f"tokenizer.chat_template accesses {', '.join(dunders[:5])}: a template-injection pattern",
                          Severity.CRITICAL)  # fmt: skip
        return GgufHeader(version, "little" if self.bo == "<" else "big", alignment, data_offset, metadata,
                          tuple(tensors))  # fmt: skip


def _run(fh: BinaryIO, size: int | None, limits: GgufLimits | None) -> tuple[GgufHeader, list[Finding]]:
    if size is None:
        size = fh.seek(0, 2)
    parser = _Parser(fh, size, limits or GgufLimits())
    try:
        return parser.parse(), parser.findings
    except Truncated as exc:
        raise _Fatal(f"file ends inside the header ({exc})") from exc
    except struct.error as exc:
        raise _Fatal(f"unreadable header field: {exc}") from exc


def read_gguf_header(fh: BinaryIO, size: int | None = None, limits: GgufLimits | None = None) -> GgufHeader:
    """Parse and validate the header; raises `GgufError` with a clear message on invalid input."""
    try:
        return _run(fh, size, limits)[0]
    except _Fatal as exc:
        raise GgufError(str(exc)) from None


def scan_gguf(fh: BinaryIO, size: int | None = None, path: str = "", limits: GgufLimits | None = None) -> ScanResult:
    """Validate the header and report problems as findings; never raises on bad input."""
    try:
        _, findings = _run(fh, size, limits)
    except _Fatal as exc:
        findings = [Finding("invalid-gguf", Severity.CRITICAL, str(exc))]
    except Exception as exc:  # the scanner must answer, whatever the bytes
        findings = [Finding("scanner-error", Severity.CRITICAL, f"scan failed: {type(exc).__name__}: {exc}")]
    return ScanResult(path=path, scanner="gguf", findings=tuple(findings))
