"""Fuzzing: the scanners never raise and never hang on random or mutated input, and the pickle walker
sees every import the real unpicklers (C `_pickle` and pure-Python `pickle._Unpickler`) would resolve."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pickle
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commons.scanning import ScanResult, scan_file, scan_gguf, scan_pickle_bytes, scan_safetensors

# No example database: nothing may be written outside the scanning folders.
FUZZ = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def timed(fn: Callable[[], ScanResult]) -> ScanResult:
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"scan took {elapsed:.2f} s"
    assert isinstance(result, ScanResult)
    return result


class Reduce:
    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


@functools.cache
def pickle_seeds() -> list[bytes]:
    seeds = [pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)], "b": {1, 2}}, protocol=p) for p in range(6)] + [
        pickle.dumps(Reduce(os.system, "id"), protocol=p) for p in (0, 2, 4)
    ]
    try:
        import torch

        buf = io.BytesIO()
        torch.save({"w": torch.zeros(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)}, buf)
        seeds.append(buf.getvalue())
        buf = io.BytesIO()
        torch.save({"w": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
        seeds.append(buf.getvalue())
    except ImportError:
        pass
    return seeds


@functools.cache
def safetensors_seed() -> bytes:
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "BF16", "shape": [4], "data_offsets": [16, 24]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(24)


def _gstr(s: str) -> bytes:
    return struct.pack("<Q", len(s)) + s.encode()


@functools.cache
def gguf_seed() -> bytes:
    kvs = [
        _gstr("general.architecture") + struct.pack("<I", 8) + _gstr("llama"),
        _gstr("general.alignment") + struct.pack("<II", 4, 32),
        _gstr("tok") + struct.pack("<IIQ", 9, 8, 3) + _gstr("a") + _gstr("bb") + _gstr("ccc"),
        _gstr("ids") + struct.pack("<IIQ", 9, 5, 3) + struct.pack("<3i", 1, 2, 3),
        _gstr("eps") + struct.pack("<If", 6, 1e-5),
    ]
    tensors = [
        _gstr("w") + struct.pack("<I2Q", 2, 4, 2) + struct.pack("<IQ", 0, 0),
        _gstr("q") + struct.pack("<I1Q", 1, 32) + struct.pack("<IQ", 8, 32),
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    return head + bytes(-len(head) % 32) + bytes(32 + 34)


INTERESTING = [0, 1, 7, 8, 255, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice", "int", "byte"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start : start + draw(st.integers(1, 64))]
        elif kind == "int":
            width, code = draw(st.sampled_from([(8, "<Q"), (4, "<I")]))
            value = draw(st.sampled_from(INTERESTING)) % (1 << (8 * width))
            data[pos : pos + width] = struct.pack(code, value)
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    timed(lambda: scan_pickle_bytes(data))
    timed(lambda: scan_safetensors(io.BytesIO(data), len(data)))
    timed(lambda: scan_gguf(io.BytesIO(data), len(data)))
    for name in ("m.bin", "m.safetensors", "m.gguf", "m.txt"):
        result = scan_file(name, io.BytesIO(data), len(data))
        assert result is None or isinstance(result, ScanResult)


@FUZZ
@given(st.data())
def test_mutated_pickles(data: st.DataObject) -> None:
    blob = data.draw(mutated(pickle_seeds()))
    timed(lambda: scan_pickle_bytes(blob, "m.bin"))


@FUZZ
@given(st.data())
def test_mutated_safetensors(data: st.DataObject) -> None:
    blob = data.draw(mutated([safetensors_seed()]))
    timed(lambda: scan_safetensors(io.BytesIO(blob), len(blob)))


@FUZZ
@given(st.data())
def test_mutated_gguf(data: st.DataObject) -> None:
    blob = data.draw(mutated([gguf_seed()]))
    timed(lambda: scan_gguf(io.BytesIO(blob), len(blob)))


def test_seeds_are_valid() -> None:
    assert scan_safetensors(io.BytesIO(safetensors_seed())).ok
    assert scan_gguf(io.BytesIO(gguf_seed())).ok
    assert all(scan_pickle_bytes(s).findings or True for s in pickle_seeds())


# -- differential: generated opcode streams against the real unpicklers ------------------------

NAMES = ["os", "system", "builtins", "eval", "collections", "OrderedDict", "torch._utils", "_rebuild_tensor_v2", "x"]


def _text(s: str) -> bytes:
    return s.encode() + b"\n"


def _string_op(draw: st.DrawFn) -> bytes:
    s = draw(st.sampled_from(NAMES))
    b = s.encode()
    return draw(
        st.sampled_from([
            b"\x8c" + bytes([len(b)]) + b,  # SHORT_BINUNICODE
            b"X" + struct.pack("<I", len(b)) + b,  # BINUNICODE
            b"\x8d" + struct.pack("<Q", len(b)) + b,  # BINUNICODE8
            b"U" + bytes([len(b)]) + b,  # SHORT_BINSTRING
            b"T" + struct.pack("<I", len(b)) + b,  # BINSTRING
            b"V" + _text(s),  # UNICODE
            b"S'" + b + b"'\n",  # STRING
        ])
    )  # fmt: skip


@st.composite
def opcode_streams(draw: st.DrawFn) -> bytes:
    """Mostly well-formed opcode streams (a stack-depth model picks valid ops), sometimes not."""
    out: list[bytes] = []
    depth, marks, memo = 0, [], set()  # type: ignore[var-annotated]
    if draw(st.booleans()):
        out.append(b"\x80" + bytes([draw(st.integers(0, 5))]))
    for _ in range(draw(st.integers(1, 40))):
        options: list[str] = ["push", "string", "string", "global", "mark"]
        if depth >= 1:
            options += ["put", "memoize", "pop", "dup", "tuple1", "binpersid"]
        if depth >= 2:
            options += ["stack_global", "stack_global", "reduce", "newobj", "build", "append", "tuple2"]
        if depth >= 3:
            options += ["setitem", "newobj_ex", "tuple3"]
        if memo:
            options += ["get", "get"]
        if marks:
            options += ["collection", "inst", "pop_mark", "appends"]
            if depth >= 1:
                options.append("obj")
        if draw(st.integers(0, 19)) == 0:
            options = ["anything"]
        kind = draw(st.sampled_from(options))
        i = draw(st.integers(0, 7))
        if kind == "push":
            out.append(draw(st.sampled_from([b"N", b"K\x01", b"\x88", b")", b"]", b"}", b"\x8f"])))
            depth += 1
        elif kind == "string":
            out.append(_string_op(draw))
            depth += 1
        elif kind == "global":
            pair = _text(draw(st.sampled_from(NAMES))) + _text(draw(st.sampled_from(NAMES)))
            out.append(b"c" + pair)
            depth += 1
        elif kind == "mark":
            out.append(b"(")
            marks.append(depth)
            depth = 0
        elif kind == "put":
            out.append(draw(st.sampled_from([b"q" + bytes([i]), b"r" + struct.pack("<I", i), b"p" + _text(str(i))])))
            memo.add(i)
        elif kind == "memoize":
            out.append(b"\x94")
            memo.add(len(memo))  # MEMOIZE stores at index len(memo), like both unpicklers
        elif kind == "get":
            j = draw(st.sampled_from(sorted(memo)))
            out.append(draw(st.sampled_from([b"h" + bytes([j]), b"j" + struct.pack("<I", j), b"g" + _text(str(j))])))
            depth += 1
        elif kind == "pop":
            out.append(b"0")
            depth -= 1
        elif kind == "dup":
            out.append(b"2")
            depth += 1
        elif kind.startswith("tuple"):
            k = int(kind[-1])
            out.append(bytes([0x84 + k]))
            depth -= k - 1
        elif kind == "binpersid":
            out.append(b"Q")
        elif kind in ("stack_global", "reduce", "newobj", "build", "append"):
            out.append(
                {"stack_global": b"\x93", "reduce": b"R", "newobj": b"\x81", "build": b"b", "append": b"a"}[kind]
            )
            depth -= 1
        elif kind in ("setitem", "newobj_ex"):
            out.append(b"s" if kind == "setitem" else b"\x92")
            depth -= 2
        elif kind == "collection":
            out.append(draw(st.sampled_from([b"t", b"l", b"d", b"\x91"])))
            depth = marks.pop() + 1
        elif kind == "inst":
            out.append(b"i" + _text(draw(st.sampled_from(NAMES))) + _text(draw(st.sampled_from(NAMES))))
            depth = marks.pop() + 1
        elif kind == "obj":
            out.append(b"o")
            depth = marks.pop() + 1
        elif kind == "pop_mark":
            out.append(b"1")
            depth = marks.pop()
        elif kind == "appends":
            out.append(draw(st.sampled_from([b"e", b"u", b"\x90"])))
            depth = marks.pop()
        else:  # anything at all, valid here or not
            anything = [b".", b"\x95" + struct.pack("<Q", i * 9), b"\x82\x01", b"P" + _text("x"), b"\x93", b"R", b"b"]
            out.append(draw(st.sampled_from([*anything, b"0", b"1", b"h\x07", _string_op(draw)])))
    out.append(draw(st.sampled_from([b".", b"", b"N."])))
    return b"".join(out)


class _Dummy:
    """Stands in for every global: callable, settable, appendable, and does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Dummy:
        return _Dummy()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def add(self, item: Any) -> None:
        pass


def _recorder(base: type[Any], buffered: bool = False) -> Callable[[bytes], list[str]]:
    class Recorder(base):  # type: ignore[misc]
        def __init__(self, f: Any) -> None:
            super().__init__(f)
            self.seen: list[str] = []

        def find_class(self, module: str, name: str) -> Any:
            self.seen.append(f"{module}.{name}")
            return _Dummy

        def persistent_load(self, pid: Any) -> Any:
            return _Dummy()

    def run(data: bytes) -> list[str]:
        # io.BytesIO has no peek(): C _pickle then drops the unread end of a FRAME on some reads;
        # a BufferedReader (open() files) has one, and C reads linearly.
        unpickler = Recorder(io.BufferedReader(io.BytesIO(data)) if buffered else io.BytesIO(data))
        with contextlib.suppress(Exception):  # only the imports it asked for matter
            unpickler.load()
        return list(unpickler.seen)

    return run


C_UNPICKLER = _recorder(pickle.Unpickler)
C_BUFFERED_UNPICKLER = _recorder(pickle.Unpickler, buffered=True)
PY_UNPICKLER = _recorder(pickle._Unpickler)  # the pure-Python one, as joblib uses


@settings(max_examples=600, deadline=None, database=None)
@given(opcode_streams())
def test_scanner_sees_every_import_the_unpicklers_resolve(data: bytes) -> None:
    result = scan_pickle_bytes(data)
    found = set(result.imports)
    for run in (C_UNPICKLER, C_BUFFERED_UNPICKLER, PY_UNPICKLER):
        seen = set(run(data))
        # The generated names are unaffected by Python 2 name mapping, so spellings agree.
        assert seen <= found, (data, seen - found, result)
    if any(n.startswith(("os.", "builtins.eval", "x.")) for n in found):
        assert not result.ok


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n.",  # FRAME longer than the data
        b"cos\nsystem",  # last line cut by EOF: pickle._Unpickler imports `os.syste`
        # A line crossing the end of a FRAME: C _pickle on io.BytesIO drops "syste" and imports `os.m`.
        b"((N(\x95\x12\x00\x00\x00\x00\x00\x00\x001NNN\x8c\x02os(cos\nsystem\n.",
        # A string crossing the end of a FRAME: C reads `system` from after the frame, a linear
        # reader sees `abcsys` and then garbage.
        b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06abcsystem\x93.",
    ],
)
def test_reader_corner_cases(data: bytes) -> None:
    result = scan_pickle_bytes(data)
    seen: set[str] = set()
    for run in (C_UNPICKLER, C_BUFFERED_UNPICKLER, PY_UNPICKLER):
        seen |= set(run(data))
    assert seen and seen <= set(result.imports)
    assert not result.ok
