"""What a pickled model checkpoint may import: the table that decides, and the policy around it.

Policy (see `classify_import`):

* `module.name` in `ALLOWED_IMPORTS` -> fine. The table holds what `torch.save` of state dicts,
  optimizer states and tensors, numpy array pickles and `transformers` `pytorch_model.bin` files
  were observed to reference (tests/unit/scanning re-derive it from real files), plus the few
  harmless builtin types torch's own `weights_only` unpickler also admits.
* A plain class name (`CapWords`, no dots, no leading underscore) in a module of a well-known ML
  library (`ML_CLASS_MODULES`, e.g. `transformers.training_args.TrainingArguments`) -> `warning`.
  Such pickles (`training_args.bin`, Lightning `.ckpt`) are common and do not run shell commands
  by themselves, but they do call library constructors, so they are shown, not trusted.
* Everything else -> `critical`, naming the import. Denylists (picklescan, ModelScan) have public
  bypasses (docs/peers.md: `torch.utils.collect_env.run`, `pandas.read_csv`, numpy tricks), so
  nothing here tries to enumerate what is dangerous; it enumerates what is known to be needed.

Deliberately not allowed: `builtins.getattr/eval/exec/compile/__import__/open/apply/type/object`,
`torch.storage._load_from_bytes` (a nested `torch.load`), `torch.load`, anything in `os`, `posix`,
`subprocess`, `pickle`, `runpy`, `webbrowser`, ... -- by not being listed.
"""

from __future__ import annotations

import re
from typing import Literal

_TORCH_REBUILD = (
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_nested_tensor",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_device_tensor_from_numpy",
)

# Legacy typed storages: torch.save still references them (`torch.FloatStorage`, ...) as storage types.
_STORAGE_KINDS = (
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexDouble", "ComplexFloat", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
)  # fmt: skip
_TENSOR_KINDS = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")

# torch module attributes that are plain values (dtypes, layouts, qschemes, memory formats).
_TORCH_VALUES = (
    "float16", "float32", "float64", "bfloat16", "half", "float", "double",
    "complex32", "complex64", "complex128", "cfloat", "cdouble", "chalf",
    "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "short", "int", "long", "bool",
    "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
    "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
    "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
    "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
    "per_channel_affine_float_qparams",
    "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "jagged",
    "contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
)  # fmt: skip

_NUMPY_SCALARS = (
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble",
    "str_", "bytes_", "void", "datetime64", "timedelta64",
)  # fmt: skip


def _build() -> frozenset[str]:
    names: set[str] = set()
    # torch tensors, parameters and their storages.
    names.update(f"torch._utils.{fn}" for fn in _TORCH_REBUILD)
    names.add("torch._tensor._rebuild_from_type_v2")  # tensors with attributes; calls a rebuild function it is given
    names.update(f"torch.{k}Storage" for k in _STORAGE_KINDS)
    names.update(f"torch.cuda.{k}Storage" for k in _STORAGE_KINDS[:12])
    names.update(f"torch.{k}Tensor" for k in _TENSOR_KINDS)
    names.update(f"torch.cuda.{k}Tensor" for k in _TENSOR_KINDS)
    names.update(("torch.storage.UntypedStorage", "torch.storage.TypedStorage"))
    names.update(("torch.Tensor", "torch._tensor.Tensor", "torch.nn.parameter.Parameter", "torch.nn.Parameter"))
    names.update(("torch.Size", "torch.device", "torch.dtype", "torch.serialization._get_layout"))
    names.add("torch.torch_version.TorchVersion")  # a str subclass: `torch.__version__` saved in checkpoints
    names.update(f"torch.{v}" for v in _TORCH_VALUES)
    # Python containers and value types; calling them with data runs no user code.
    names.update(("collections.OrderedDict", "collections.Counter", "collections.defaultdict", "collections.deque"))
    names.update(
        f"builtins.{n}"
        for n in ("set", "frozenset", "dict", "list", "tuple", "bytearray", "bytes", "complex", "slice", "range",
                  "int", "float", "bool", "str")
    )  # fmt: skip
    names.add("_codecs.encode")  # protocol-2 pickles encode bytes as _codecs.encode(str, "latin1")
    names.add("argparse.Namespace")  # an attribute bag; fairseq / OpenNMT checkpoints store their args in one
    names.update(("datetime.datetime", "datetime.date", "datetime.timedelta", "datetime.timezone"))
    names.update(("decimal.Decimal", "fractions.Fraction", "uuid.UUID"))
    # numpy arrays, dtypes and scalars (numpy 1.x `numpy.core`, numpy 2.x `numpy._core`).
    for core in ("numpy.core", "numpy._core"):
        names.update((f"{core}.multiarray._reconstruct", f"{core}.multiarray.scalar", f"{core}.numeric._frombuffer"))
    names.update(("numpy.ndarray", "numpy.dtype"))
    names.update(("numpy.ma.core._mareconstruct", "numpy.ma.core.MaskedArray", "numpy.ma.MaskedArray"))
    names.update(f"numpy.{s}" for s in _NUMPY_SCALARS)
    names.update(f"numpy.dtypes.{s}" for s in (
        "BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType", "UInt16DType",
        "UInt32DType", "UInt64DType", "Float16DType", "Float32DType", "Float64DType", "Complex64DType",
        "Complex128DType", "StrDType", "BytesDType", "VoidDType", "ObjectDType",
    ))  # fmt: skip
    return frozenset(names)


#: Fully qualified `module.name` strings a checkpoint pickle may reference.
ALLOWED_IMPORTS: frozenset[str] = _build()

#: Root packages whose *classes* are reported as warnings rather than critical findings.
ML_CLASS_MODULES: frozenset[str] = frozenset(
    {"transformers", "accelerate", "peft", "trl", "diffusers", "sentence_transformers",
     "pytorch_lightning", "lightning", "lightning_fabric", "timm", "tokenizers"}
)  # fmt: skip

_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")

Verdict = Literal["allowed", "ml-class", "denied"]


def classify_import(module: str, name: str) -> Verdict:
    """Decide one import: `allowed`, `ml-class` (a warning) or `denied` (critical)."""
    if "." in name:
        # Protocol 4 resolves dotted names attribute by attribute (`torch` + `_utils.x.__globals__`);
        # no checkpoint needs that, and refusing it keeps one spelling per allowed object.
        return "denied"
    if f"{module}.{name}" in ALLOWED_IMPORTS:
        return "allowed"
    if (
        module.split(".", 1)[0] in ML_CLASS_MODULES
        and _IDENTIFIER_PATH.match(module)
        and not any(part.startswith("_") for part in module.split("."))
        and _CLASS_NAME.match(name)
    ):
        return "ml-class"
    return "denied"
