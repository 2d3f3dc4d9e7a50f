"""llama.cpp's own quantizer (`llama_model_quantize`, through llama-cpp-python) on a GGUF we wrote.

K-quants (Q4_K_M, Q5_K_M, Q6_K) are not written by `gguf`'s numpy code, so the quantize job writes a
lossless F32 GGUF with `commons.ml.gguf_export` and hands it to llama.cpp, which quantizes it exactly
as `llama-quantize` would: its per-tensor type choices (the `_M` mixes give attn_v / ffn_down more
bits), its fallbacks for rows that do not split into 256-weight super-blocks (Q4_K -> Q5_0,
Q5_K -> Q5_1, Q6_K -> Q8_0), and every metadata key of the input copied over (tokenizer, chat
template, source repo) with `general.file_type` set to the new type.

The same call writes F16 / Q8_0 / Q4_0, which is how `bench/gguf_llama_cpp.py` and the tests check that
our own F16 / Q8_0 / Q4_0 files are byte for byte what llama.cpp writes.

llama-cpp-python is optional: `available()` says whether it is installed without importing it (the
hub server validates specs and must not load native libraries or numpy).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from commons.ml.gguf_export import ExportReport

__all__ = ["K_QUANTS", "LLAMA_CPP_TYPES", "PACKAGE", "LlamaCppQuantizeError", "available", "quantize", "tensor_types"]

# Variant name -> llama.cpp's `llama_ftype` constant name (llama-cpp-python exports them).
LLAMA_CPP_TYPES: dict[str, str] = {
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
}
K_QUANTS = ("Q4_K_M", "Q5_K_M", "Q6_K")
PACKAGE = "llama-cpp-python"


class LlamaCppQuantizeError(RuntimeError):
    """llama.cpp refused or failed to quantize; the message carries its last log lines."""


def available() -> bool:
    """Whether llama-cpp-python is installed (found, not imported)."""
    return importlib.util.find_spec("llama_cpp") is not None


def quantize(source: Path, out_path: Path, file_type: str, *, pure: bool = False,
             threads: int | None = None) -> ExportReport:
    """llama.cpp quantizes the F32/F16 GGUF `source` to `file_type`, written atomically at `out_path`.

    `pure` makes every 2-D tensor the file type's base type (no per-tensor mix, no Q6_K output):
    only for comparing tensor by tensor. Raises LlamaCppQuantizeError, or ImportError naming the
    package when llama-cpp-python is missing.
    """
    if file_type not in LLAMA_CPP_TYPES:
        raise LlamaCppQuantizeError(f"unknown llama.cpp type {file_type!r}; known: {', '.join(LLAMA_CPP_TYPES)}")
    try:
        # Any: mypy's view of llama-cpp-python must not depend on whether it is installed.
        llama_cpp: Any = importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ImportError(f"{file_type} needs llama.cpp's quantizer: pip install {PACKAGE}") from exc
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_CPP_TYPES[file_type])
    params.nthread = threads or 0  # 0: llama.cpp uses every hardware thread
    params.pure = pure

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".partial", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    log: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def collect(level: int, text: bytes, user_data: Any) -> None:
        log.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))  # llama.cpp logs per tensor: keep it, for errors
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0:
            tail = "".join(log).strip().splitlines()[-5:]
            raise LlamaCppQuantizeError(f"llama.cpp could not quantize {source.name} to {file_type} "
                                        f"(status {status}): {' | '.join(tail) or 'no log'}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        llama_cpp.llama_log_set(importlib.import_module("llama_cpp._logger").llama_log_callback, ctypes.c_void_p(0))
    return ExportReport(out_path, file_type, out_path.stat().st_size, tensor_types(out_path))


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each GGML type a GGUF holds."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for tensor in GGUFReader(path).tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    return counts
