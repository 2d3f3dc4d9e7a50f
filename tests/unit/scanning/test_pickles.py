"""The pickle scanner: a hostile corpus that must all be flagged, real checkpoints that must all be clean."""

from __future__ import annotations

import collections
import io
import os
import pickle
import random
import runpy
import subprocess
import sys
import tempfile
import warnings
import webbrowser
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from commons.scanning import ALLOWED_IMPORTS, ScanResult, Severity, classify_import, scan_file, scan_pickle_bytes

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")


class Reduce:
    """Pickles as `fn(*args)`: the classic payload shape."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def su(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def call(module: str, name: str, arg: str = "id") -> bytes:
    """Protocol-0 `module.name(arg)`."""
    return glob(module, name) + b"(S'" + arg.encode() + b"'\ntR."


def critical_names(result: ScanResult) -> str:
    return "\n".join(f.message for f in result.findings if f.severity is Severity.CRITICAL)


def assert_flags(data: bytes, *names: str, path: str = "model.bin") -> ScanResult:
    result = scan_pickle_bytes(data, path)
    assert result.worst is Severity.CRITICAL, result
    assert not result.ok
    text = critical_names(result)
    for name in names:
        assert name in text, (name, result)
    return result


def torch_bytes(obj: Any, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


# -- hostile corpus --------------------------------------------------------------------------


def _stack_global_memo() -> bytes:
    # The strings are memoised early, dropped, then fetched back for STACK_GLOBAL.
    return (
        b"\x80\x04" + su("os") + b"\x94" + su("system") + b"\x94" + b"00" + b"N0"
        + b"h\x00h\x01\x93" + su("id") + b"\x85R."
    )  # fmt: skip


def _long_memo_variants() -> list[bytes]:
    return [
        # LONG_BINPUT / LONG_BINGET
        b"\x80\x04" + su("os") + b"r\x07\x00\x00\x00" + su("system") + b"r\x09\x00\x00\x000" + b"0"
        + b"j\x07\x00\x00\x00j\x09\x00\x00\x00\x93" + su("id") + b"\x85R.",
        # text PUT / GET with BINSTRING and SHORT_BINSTRING operands (decoded to str by default)
        b"\x80\x04T\x02\x00\x00\x00osp5\n0U\x06systemp6\n0g5\ng6\n\x93" + su("id") + b"\x85R.",
        # UNICODE (raw-unicode-escape) operands with escapes
        b"\x80\x04V\\u006fs\nVsy\\u0073tem\n\x93" + su("id") + b"\x85R.",
    ]  # fmt: skip


HOSTILE: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("os.system GLOBAL", call("os", "system"), ("os.system",)),
    ("posix.system", call("posix", "system"), ("posix.system",)),
    ("nt.system", call("nt", "system"), ("nt.system",)),
    ("__builtin__ eval via fix_imports", call("__builtin__", "eval", "1"), ("builtins.eval",)),
    ("builtins.exec", call("builtins", "exec", "import os"), ("builtins.exec",)),
    ("builtins.compile", call("builtins", "compile"), ("builtins.compile",)),
    ("builtins.__import__", call("builtins", "__import__", "os"), ("builtins.__import__",)),
    ("builtins.open", call("builtins", "open", "/etc/passwd"), ("builtins.open",)),
    ("builtins.apply", call("__builtin__", "apply"), ("builtins.apply",)),
    ("torch.storage._load_from_bytes", call("torch.storage", "_load_from_bytes"), ("torch.storage._load_from_bytes",)),
    ("torch.load", call("torch", "load", "x.pt"), ("torch.load",)),
    ("modelscan bypass collect_env", call("torch.utils.collect_env", "run", "id"), ("torch.utils.collect_env.run",)),
    ("modelscan bypass pandas", call("pandas", "read_csv", "http://x"), ("pandas.read_csv",)),
    ("numpy runstring", call("numpy.testing._private.utils", "runstring"), ("numpy.testing._private.utils.runstring",)),
    ("transformers function", call("transformers.dynamic_module_utils", "get_class_from_dynamic_module"),
     ("transformers.dynamic_module_utils.get_class_from_dynamic_module",)),
    (
        "getattr(__import__('os'), 'system')('id')",
        glob("builtins", "getattr") + b"(" + glob("builtins", "__import__") + b"(S'os'\ntRS'system'\ntR(S'id'\ntR.",
        ("builtins.getattr", "builtins.__import__", "REDUCE calls the result of calling builtins.getattr"),
    ),
    ("STACK_GLOBAL from memo", _stack_global_memo(), ("os.system",)),
    *[(f"memo variant {i}", data, ("os.system",)) for i, data in enumerate(_long_memo_variants())],
    (
        "STACK_GLOBAL from a computed string",
        # builtins.str is allowed, but its result is not a constant: the import cannot be resolved.
        b"\x80\x04" + glob("builtins", "str") + su("os") + b"\x85R" + su("system") + b"\x93)R.",
        ("STACK_GLOBAL imports a name that is not a constant string",),
    ),
    (
        "protocol-4 dotted name",
        b"\x80\x04" + su("collections") + su("OrderedDict.__init__.__globals__") + b"\x93.",
        ("collections.OrderedDict.__init__.__globals__",),
    ),
    ("INST", b"(S'id'\nios\nsystem\n.", ("os.system",)),
    ("OBJ", b"(" + glob("os", "system") + b"S'id'\no.", ("os.system",)),
    ("NEWOBJ", b"\x80\x02" + glob("subprocess", "Popen") + b"]\x85\x81.", ("subprocess.Popen",)),
    ("EXT1", b"\x80\x02\x82\x01)R.", ("EXT1 loads copyreg extension code 1",)),
    ("EXT2", b"\x80\x02\x83\x01\x02)R.", ("EXT2",)),
    ("EXT4", b"\x80\x02\x84\x01\x00\x00\x00)R.", ("EXT4",)),
    ("BUILD on an imported class", b"\x80\x02" + glob("collections", "OrderedDict") + b"}b.",
     ("BUILD modifies the imported object collections.OrderedDict",)),
    ("SETITEM on an imported value", glob("torch", "float32") + b"S'a'\nS'b'\ns.",
     ("SETITEM modifies the imported object torch.float32",)),
    ("call a call result", b"\x80\x02" + glob("collections", "OrderedDict") + b")R)R.",
     ("REDUCE calls the result of calling collections.OrderedDict",)),
    ("truncated after GLOBAL", glob("os", "system"), ("os.system",)),
]  # fmt: skip


@pytest.mark.parametrize(("data", "names"), [(d, n) for _, d, n in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_hand_written_hostile_pickles_are_critical(data: bytes, names: tuple[str, ...]) -> None:
    assert_flags(data, *names)


PAYLOADS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (os.system, ("id",)),
    (subprocess.Popen, (["id"],)),
    (subprocess.check_output, (["id"],)),
    (eval, ("1+1",)),
    (exec, ("import os",)),
    (compile, ("1", "f", "eval")),
    (__import__, ("os",)),
    (getattr, (int, "from_bytes")),
    (open, ("/etc/passwd",)),
    (runpy._run_code, ("print(1)", {})),  # type: ignore[attr-defined]
    (webbrowser.open, ("http://example.invalid",)),
    (pickle.loads, (pickle.dumps(Reduce(os.system, "id")),)),
]


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{pickle.whichmodule(fn, fn.__name__)}.{fn.__qualname__}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(("fn", "args"), PAYLOADS, ids=[_qualname(fn) for fn, _ in PAYLOADS])
def test_reduce_payloads_at_every_protocol(fn: Callable[..., Any], args: tuple[Any, ...], protocol: int) -> None:
    data = pickle.dumps(Reduce(fn, *args), protocol=protocol)
    # Protocols < 3 may write Python 2 spellings (`_pickle` -> `pickle`); the qualified name stays.
    result = scan_pickle_bytes(data)
    name = next(i for i in result.imports if i.endswith("." + fn.__qualname__))
    assert_flags(data, name)
    finding = next(f for f in result.findings if name in f.message)
    assert finding.kind == "disallowed-import" and finding.detail and "REDUCE" in finding.detail
    # Truncated copies still name the import (the loader would have executed it before failing).
    for cut in (1, 2):
        assert_flags(data[:-cut], name)


def test_payload_after_large_benign_prefix() -> None:
    benign = [list(range(200_000)), b"\0" * (8 << 20), {"k": "v" * 100_000}, np.arange(10)]
    data = pickle.dumps([*benign, Reduce(os.system, "id")], protocol=4)
    assert len(data) > 8 << 20
    assert_flags(data, "posix.system")


def test_second_pickle_written_back_to_back_is_scanned() -> None:
    data = pickle.dumps({"a": 1}, protocol=2) + pickle.dumps(Reduce(os.system, "id"), protocol=2)
    assert_flags(data, "posix.system")


def test_malicious_pickle_inside_torch_save() -> None:
    data = torch_bytes({"w": torch.zeros(3), "cfg": Reduce(os.system, "id")})
    result = assert_flags(data, "posix.system", path="pytorch_model.bin")
    assert "torch._utils._rebuild_tensor_v2" in result.imports


def _rewrite_zip(data: bytes, replace: dict[str, bytes], add: Sequence[tuple[str, bytes]] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
        for name, payload in add:
            dst.writestr(name, payload)
    return out.getvalue()


def test_injected_data_pkl_in_real_torch_zip() -> None:
    clean = torch_bytes({"w": torch.ones(4)})
    assert scan_pickle_bytes(clean).ok
    evil = pickle.dumps(Reduce(os.system, "id"), protocol=2)
    injected = _rewrite_zip(clean, {"archive/data.pkl": evil})
    assert_flags(injected, "posix.system", path="pytorch_model.bin")
    # A second member with the same name (readers disagree on which one wins) and odd casing.
    dup = _rewrite_zip(clean, {}, [("archive/data.pkl", evil)])
    assert_flags(dup, "posix.system")
    upper = _rewrite_zip(clean, {}, [("archive/DATA.PKL", evil)])
    assert_flags(upper, "posix.system")
    # A FRAME boundary trick: a linear opcode walker (pickletools.genops-style) sees "abcsys" and then
    # garbage, while C _pickle reading the member through io.BytesIO, as torch.load does, imports os.system.
    framed = b"\x80\x04\x95\x09" + bytes(7) + b"\x8c\x02os\x8c\x06abcsystem\x93)R."
    assert_flags(_rewrite_zip(clean, {"archive/data.pkl": framed}), "os.system")
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", evil)
    assert_flags(deflated.getvalue(), "posix.system")


def test_corrupt_zip_is_critical() -> None:
    clean = torch_bytes({"w": torch.ones(4)})
    result = scan_pickle_bytes(clean[: len(clean) // 2])
    assert result.worst is Severity.CRITICAL
    assert {f.kind for f in result.findings} & {"malformed-archive", "unreadable"}


def _legacy(*pickles: bytes, raw: bytes = b"") -> bytes:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return magic + b"".join(pickles) + raw


def test_legacy_torch_file_all_five_pickles_are_scanned() -> None:
    version = pickle.dumps(1001, protocol=2)
    sys_info = pickle.dumps({"little_endian": True}, protocol=2)
    data = _legacy(version, sys_info, pickle.dumps({"a": 1}, protocol=2), pickle.dumps(Reduce(os.system, "id"), 2))
    assert_flags(data, "posix.system")


def test_storage_bytes_are_not_mistaken_for_pickles() -> None:
    payload = pickle.dumps(Reduce(os.system, "id"), protocol=2)
    tensor = torch.tensor(list(payload), dtype=torch.uint8)
    for kwargs in ({}, {"_use_new_zipfile_serialization": False}):
        result = scan_pickle_bytes(torch_bytes({"t": tensor}, **kwargs))
        assert result.ok, result


def test_ml_library_class_is_a_warning() -> None:
    data = b"\x80\x02" + glob("transformers.training_args", "TrainingArguments") + b")\x81}b."
    result = scan_pickle_bytes(data)
    assert result.worst is Severity.WARNING
    assert result.findings[0].kind == "unknown-import"
    assert "transformers.training_args.TrainingArguments" in result.findings[0].message
    assert classify_import("transformers", "AutoModel") == "ml-class"
    assert classify_import("transformers._private", "Thing") == "denied"
    assert classify_import("transformers", "pipeline") == "denied"
    assert classify_import("transformers", "AutoModel.from_pretrained") == "denied"


def test_not_a_pickle_is_info_and_garbage_in_pickle_is_a_warning() -> None:
    ggml = scan_pickle_bytes(b"lmgg" + bytes(100), "ggml-model.bin")
    assert ggml.ok and ggml.findings[0].kind == "not-a-pickle"
    half = pickle.dumps({"a": torch.Size([2])}, protocol=2)
    result = scan_pickle_bytes(half[:-4] + b"\xff\xff\xff\xff")
    assert result.worst is Severity.WARNING and result.findings[0].kind == "malformed"


def test_scan_limit_is_critical() -> None:
    from commons.scanning import PickleLimits

    data = pickle.dumps(list(range(1000)), protocol=2)
    result = scan_pickle_bytes(data, limits=PickleLimits(max_ops=100))
    assert result.worst is Severity.CRITICAL and result.findings[0].kind == "scan-limit"


def test_legacy_tar_format_is_unsupported() -> None:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("storages")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    result = scan_pickle_bytes(buf.getvalue())
    assert result.worst is Severity.CRITICAL and result.findings[0].kind == "unsupported-format"


# -- clean corpus ----------------------------------------------------------------------------


def _state_dicts() -> dict[str, Any]:
    torch.manual_seed(0)
    sd = collections.OrderedDict(
        f32=torch.randn(3, 4),
        f16=torch.randn(4).half(),
        bf16=torch.randn(4).bfloat16(),
        i8=torch.randint(-5, 5, (4,), dtype=torch.int8),
        u8=torch.randint(0, 5, (4,), dtype=torch.uint8),
        i64=torch.arange(4),
        b=torch.tensor([True, False]),
        f8=torch.zeros(2, dtype=torch.float8_e4m3fn),
        c64=torch.zeros(2, dtype=torch.complex64),
        view=torch.arange(10.0)[2:5],
    )
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    sched.step()
    param = torch.nn.Parameter(torch.zeros(2))
    param.tag = "extra attribute"
    tagged = torch.zeros(2)
    tagged.note = "a plain tensor with an attribute"
    return {
        "state_dict": sd,
        "nested": {"model": sd, "meta": {"epoch": 3, "names": ["a", "b"], "ids": {1, 2}, "t": (1, 2.5, None)}},
        "module_state_dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "misc": {
            "param": torch.nn.Parameter(torch.ones(2)),
            "param_with_attr": param,
            "tensor_with_attr": tagged,
            "size": torch.Size([2, 3]),
            "dtype": torch.bfloat16,
            "device": torch.device("cpu"),
            "sparse": torch.eye(3).to_sparse(),
            "meta": torch.empty(2, 2, device="meta"),
            "version": torch.__version__,
            "rng": torch.get_rng_state(),
            "slice": slice(1, 3),
            "bytes": b"\x00\x01",
            "bytearray": bytearray(b"ab"),
            "complex": 1 + 2j,
            "frozenset": frozenset({1}),
        },
    }


def _numpy_pickles() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        out[f"arange-p{protocol}"] = pickle.dumps(np.arange(3), protocol=protocol)
        out[f"mixed-p{protocol}"] = pickle.dumps(
            {
                "f16": np.zeros((2, 2), dtype=np.float16),
                "obj": np.array(["a", 1, None], dtype=object),
                "struct": np.zeros(2, dtype=[("a", "f4"), ("b", "i8")]),
                "scalars": [np.float32(1.5), np.int64(3), np.bool_(True), np.str_("x")],
                "dtypes": [np.dtype("f4"), np.float32],
                "rng": np.random.get_state(),
                "masked": np.ma.masked_array([1, 2], mask=[0, 1]),
            },
            protocol=protocol,
        )
    return out


def _clean_corpus() -> dict[str, bytes]:
    corpus: dict[str, bytes] = {}
    for name, obj in _state_dicts().items():
        corpus[f"{name}.zip"] = torch_bytes(obj)
        corpus[f"{name}.legacy"] = torch_bytes(obj, _use_new_zipfile_serialization=False)
        corpus[f"{name}.p4"] = torch_bytes(obj, pickle_protocol=4)
    corpus.update(_numpy_pickles())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated, still found in checkpoints
        q = torch.quantize_per_tensor(torch.zeros(3), 0.1, 0, torch.qint8)
    corpus["qtensor.zip"] = torch_bytes({"q": q})
    return corpus


def test_real_checkpoints_are_clean_and_use_only_allowlisted_imports() -> None:
    seen: set[str] = set()
    for name, data in _clean_corpus().items():
        result = scan_pickle_bytes(data, name)
        assert result.ok and not result.findings, (name, result)
        assert set(result.imports) <= ALLOWED_IMPORTS
        seen.update(result.imports)
    # The corpus really exercises the table (guards against a scanner that sees no imports at all).
    for needed in (
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_qtensor",
        "torch.BFloat16Storage",
        "collections.OrderedDict",
        "builtins.set",
        "_codecs.encode",
        "numpy._core.multiarray._reconstruct" if np.__version__ >= "2" else "numpy.core.multiarray._reconstruct",
    ):
        assert needed in seen, needed


def test_default_checkpoints_also_load_with_torch_weights_only() -> None:
    # Cross-check with torch's own allowlist unpickler on the default format. Ours is a little
    # broader (protocol 4, slices, frozensets, torch.__version__), which weights_only refuses.
    for name, obj in _state_dicts().items():
        if name != "misc":
            data = torch_bytes(obj)
            assert scan_pickle_bytes(data).ok
            torch.load(io.BytesIO(data), weights_only=True)


def test_transformers_pytorch_model_bin_is_clean() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32, tie_word_embeddings=True,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        model.save_pretrained(out, safe_serialization=False)
        bins = sorted(out.glob("*.bin"))
        if not bins:
            # transformers >= 5 always writes safetensors; write pytorch_model.bin the way 4.x did.
            torch.save(model.state_dict(), out / "pytorch_model.bin")
            model.to(torch.bfloat16)
            torch.save(model.state_dict(), out / "pytorch_model-bf16.bin")
            bins = sorted(out.glob("*.bin"))
        for path in sorted(out.iterdir()):
            with path.open("rb") as fh:
                result = scan_file(path.name, fh, path.stat().st_size)
            if path.suffix == ".json":
                assert result is None
                continue
            assert result is not None and result.ok and not result.findings, (path.name, result)
        assert bins


def test_scan_file_dispatch() -> None:
    def scan(name: str, data: bytes) -> ScanResult | None:
        return scan_file(name, io.BytesIO(data), len(data))

    evil = pickle.dumps(Reduce(os.system, "id"), protocol=2)
    assert scan("config.json", b"{}") is None
    assert scan("README.md", b"# hi") is None
    for name in ("x.bin", "x.pt", "x.pth", "x.pkl", "x.ckpt", "x.pickle", "x.joblib", "dir/model.pth.tar", "noext"):
        result = scan(name, evil)
        assert result is not None and result.scanner == "pickle" and result.worst is Severity.CRITICAL, name
    # Magic wins over the name: a protocol-2 pickle named .txt is still scanned.
    assert scan("notes.txt", evil) is not None
    assert scan("notes.txt", b"\x80\x02") is not None
    gguf = scan("model.bin", b"GGUF" + bytes(20))
    assert gguf is not None and gguf.scanner == "gguf"
    st = scan("model.safetensors", b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert st is not None and st.scanner == "safetensors" and st.ok


def test_result_helpers() -> None:
    result = scan_pickle_bytes(call("os", "system"))
    assert result.severity_label == "critical"
    as_json = [f.to_json() for f in result.findings]
    assert as_json[0]["severity"] == "critical" and "os.system" in as_json[0]["message"]
    clean = scan_pickle_bytes(pickle.dumps({"a": 1}))
    assert clean.severity_label == "ok" and clean.worst is None and clean.ok


def test_many_findings_are_capped() -> None:
    names = [f"mod{i}" for i in range(200)]
    data = b"(" + b"".join(glob(n, "f") for n in names) + b"l."
    result = scan_pickle_bytes(data)
    assert len(result.findings) <= 52
    assert result.findings[-1].kind == "truncated-report"
    assert len(result.imports) == 200


def test_random_module_names_never_pass() -> None:
    rng = random.Random(0)
    for _ in range(200):
        module = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz._") for _ in range(rng.randint(1, 12)))
        assert classify_import(module, "system") == "denied"


def test_torchscript_archive_is_a_warning_not_a_pass() -> None:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), buf)
    result = scan_pickle_bytes(buf.getvalue(), "model.pt")
    assert result.worst is Severity.WARNING and [f.kind for f in result.findings] == ["torchscript"]
    assert any(i.startswith("__torch__.") for i in result.imports)
    # Without constants.pkl torch.load unpickles with Python, so `__torch__` names are not excused.
    fake = io.BytesIO()
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("archive/code/__torch__.py", "")
        zf.writestr("archive/data.pkl", b"\x80\x02" + glob("__torch__.x", "Y") + b").")
    assert_flags(fake.getvalue(), "__torch__.x.Y")


def test_scanning_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "import commons.scanning\n"
        "heavy = [m for m in ('torch', 'numpy', 'safetensors', 'gguf', 'transformers') if m in sys.modules]\n"
        "ours = sorted(m for m in sys.modules if m.startswith('commons') and not m.startswith('commons.scanning'))\n"
        "print(heavy, ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] ['commons']"


@pytest.mark.parametrize("data", [b"\x82\x05\x9a\x11garbage", b"\x83\x01\x00\xff\xfe", b"\x84\x01\x00\x00\x00zz"])
def test_random_bytes_starting_with_ext_are_not_critical(data: bytes) -> None:
    """1 in ~100 random `.bin` files starts with EXT1/2/4; alone, EXT cannot run anything (empty registry)."""
    result = scan_pickle_bytes(data, "random.bin")
    assert result.worst is not Severity.CRITICAL, result
