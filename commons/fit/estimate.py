"""Hardware fit, as pure functions: memory a variant needs and the decode speed a machine can give it.

Decode at batch 1 streams every weight once per token, so a token costs a fixed per-layer overhead
(graph, kernel launches, thread barriers) plus the weight and KV-cache bytes over the engine's
effective memory bandwidth:

    seconds/token = layers x overhead_per_layer + (weight bytes + KV bytes) / (bandwidth x efficiency)

Calibration (the project machine: 2 vCPU Zen 3, read bandwidth 15.5 GB/s with 2 threads, measured):

    llama.cpp     efficiency 1.0, 0.33 ms/layer: the "~10 ms per token over 30 layers + streaming at the
                  full read bandwidth" decomposition of the measured F16 38.0, Q8_0 49.2 and Q4_1 59.2 tok/s
                  (this model predicts 36, 52 and 62)
    transformers  efficiency 0.37, 0.83 ms/layer: fp32 8.2 and bf16 14.5 tok/s measured (predicts 8.4, 13.9);
                  MKL's GEMV streams at about one core's bandwidth, and eager PyTorch costs ~25 ms per token

Memory: weights (exact bytes from the file headers) + KV cache at the full context + a runtime overhead
(transformers: ~370 MB above the weights at peak in the fp32 run, rounded up to 384 MiB; llama.cpp:
compute buffers and logits, 128 MiB). Nothing here reads files, a clock or settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIB = 1 << 20
GIB = 1 << 30
# The project machine's measured 2-thread read bandwidth, the default when none is given.
DEFAULT_BANDWIDTH = 15.5e9
DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class Engine:
    name: str
    efficiency: float  # share of the machine's read bandwidth the engine's GEMV reaches
    overhead_per_layer_s: float
    runtime_bytes: int
    kv_bytes_per_value: int  # llama.cpp keeps the KV cache in f16; transformers in the compute dtype


LLAMA_CPP = Engine("llama.cpp", 1.0, 0.00033, 128 * MIB, 2)
TRANSFORMERS = Engine("transformers", 0.37, 0.00083, 384 * MIB, 4)
# torchao weight-only checkpoints in transformers. No speed estimate: on CPU they dequantize on every
# call instead of streaming fewer bytes (SmolLM2, one run: fp32 4.5 tok/s, per-row int8 2.8, group-wise
# int8 0.6), so bytes/bandwidth says nothing about them. They save memory, not time, on a CPU.
TORCHAO = Engine("transformers + torchao", 0.0, 0.0, 384 * MIB, 4)

# Bytes per parameter of common precisions (block formats include their scales).
PRECISIONS: dict[str, float] = {
    "float32": 4.0,
    "bfloat16 / F16": 2.0,
    "int8 / Q8_0": 34 / 32,
    "Q4_0": 18 / 32,
}


@dataclass(frozen=True)
class Shape:
    """What the KV cache depends on (from config.json or GGUF metadata)."""

    layers: int
    kv_heads: int
    head_dim: int
    max_context: int | None


@dataclass(frozen=True)
class Machine:
    ram_bytes: int
    bandwidth: float = DEFAULT_BANDWIDTH  # bytes/s


@dataclass(frozen=True)
class Variant:
    """One runnable form of a model: a GGUF file, or a safetensors checkpoint (a folder)."""

    repo_id: str
    path: str  # the file (GGUF) or the folder ("" for the repo root)
    format: str  # "gguf" or "safetensors"
    precision: str  # e.g. "Q4_0", "F16", "float32", "bfloat16", "int8 (torchao)"
    n_params: int
    weight_bytes: int
    streamed_bytes: int  # weights read per decoded token (an untied input embedding is only looked up)
    shape: Shape | None

    @property
    def engine(self) -> Engine:
        if self.format == "gguf":
            return LLAMA_CPP
        return TORCHAO if self.precision.endswith("(torchao)") else TRANSFORMERS


@dataclass(frozen=True)
class Fit:
    variant: Variant
    context: int
    kv_bytes: int
    needed_bytes: int
    fits: bool
    tokens_per_s: float | None  # None when the shape (layers) is unknown

    def to_json(self) -> dict[str, object]:
        v = self.variant
        return {"repo_id": v.repo_id, "path": v.path, "format": v.format, "precision": v.precision,
                "engine": v.engine.name, "n_params": v.n_params, "weight_bytes": v.weight_bytes,
                "context": self.context, "kv_cache_bytes": self.kv_bytes, "needed_bytes": self.needed_bytes,
                "fits": self.fits, "decode_tokens_per_s": self.tokens_per_s}


def kv_cache_bytes(shape: Shape, positions: int, bytes_per_value: int) -> int:
    """Keys and values of every layer for `positions` tokens: 2 x layers x kv_heads x head_dim x bytes."""
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * bytes_per_value * positions


def context_for(shape: Shape | None, wanted: int | None) -> int:
    limit = shape.max_context if shape is not None and shape.max_context else None
    context = wanted or DEFAULT_CONTEXT
    return min(context, limit) if limit else context


def decode_tokens_per_s(variant: Variant, machine: Machine, positions: int) -> float | None:
    """Estimated greedy decode speed at batch 1 with `positions` tokens in the KV cache (None: no estimate)."""
    engine = variant.engine
    if variant.shape is None or engine.efficiency == 0:
        return None
    streamed = variant.streamed_bytes + kv_cache_bytes(variant.shape, positions, engine.kv_bytes_per_value)
    seconds = variant.shape.layers * engine.overhead_per_layer_s + streamed / (machine.bandwidth * engine.efficiency)
    return 1.0 / seconds


def fit(variant: Variant, machine: Machine, context: int | None = None) -> Fit:
    """Does `variant` run on `machine` with a `context`-token window, and how fast (at half the window)."""
    ctx = context_for(variant.shape, context)
    kv = kv_cache_bytes(variant.shape, ctx, variant.engine.kv_bytes_per_value) if variant.shape else 0
    needed = variant.weight_bytes + kv + variant.engine.runtime_bytes
    return Fit(variant, ctx, kv, needed, needed <= machine.ram_bytes,
               decode_tokens_per_s(variant, machine, ctx // 2))


def precision_table(n_params: int) -> dict[str, int]:
    """Bytes the weights take at each common precision."""
    return {name: round(n_params * per) for name, per in PRECISIONS.items()}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*(?:/\s*s)?\s*$", re.IGNORECASE)


def _scaled(match: re.Match[str] | None, text: str, what: str) -> float:
    if match is None:
        raise ValueError(f"{what} {text!r} is not a size like 8G, 512MiB or 16GB")
    number, unit, binary = float(match[1]), match[2].lower(), match[3]
    power = " kmgt".index(unit) if unit else 0
    base = 1024 if binary or what == "RAM" else 1000
    return number * float(base**power)


def parse_ram(text: str) -> int:
    """"8G", "8GiB", "16gb", "512M" -> bytes. Memory sizes are binary (8G = 8 GiB)."""
    return int(_scaled(_SIZE.match(text), text, "RAM"))


def parse_bandwidth(text: str) -> float:
    """"20GB/s", "20G", "15.5 GB/s" -> bytes/s. Rates are decimal, as bandwidths are quoted (20 GB/s = 20e9)."""
    return _scaled(_RATE.match(text), text, "bandwidth")
