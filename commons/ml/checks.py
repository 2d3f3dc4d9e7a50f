"""Checks that run before any training: is the base a causal LM, do its layers and the memory fit the recipe.

Everything here reads config and safetensors *headers* only, so a bad input is reported within
seconds, before weights are loaded and long before anything could be written.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.ml.specs import LoraRecipe

GIB = 1024**3
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

# Bytes of activations kept for backward, per token, per layer, per unit of hidden size (fp32).
# Calibrated on SmolLM2-135M (docs/perf-anchors.md F1: 3.66 GB peak RSS at 4 x 256 tokens) with some margin.
ACTIVATION_BYTES = 4 * 30
RUNTIME_BYTES = 600 * 1024**2  # torch, tokenizers and Python themselves


class InputError(Exception):
    """An input or recipe the job cannot use. Raised before training; the message says what to change."""


@dataclass(frozen=True)
class WeightsInfo:
    """What the safetensors headers say about the base model."""

    n_params: int
    bytes_on_disk: int
    linear_shapes: dict[str, list[tuple[int, int]]]
    """For each module name suffix (`q_proj`), the (out, in) shapes of every 2-D `*.weight` with that name."""


@dataclass(frozen=True)
class MemoryEstimate:
    total: int
    parts: dict[str, int]

    def describe(self) -> str:
        return ", ".join(f"{name} {size / GIB:.2f} GiB" for name, size in self.parts.items())


def check_causal_lm(config: Any, repo_id: str) -> None:
    """Raise InputError unless `config` (a transformers PretrainedConfig) describes a causal LM checkpoint."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type or "")
    architectures = list(getattr(config, "architectures", None) or [])
    causal_names = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    if causal is None or (architectures and not any(a in causal_names for a in architectures)):
        what = ", ".join(architectures) or model_type or "unknown architecture"
        raise InputError(
            f"base model {repo_id} is a {what} ({model_type}), not a causal language model: LoRA fine-tuning "
            "here needs a checkpoint saved as a ...ForCausalLM (e.g. LlamaForCausalLM)"
        )
    if getattr(config, "is_encoder_decoder", False):
        raise InputError(
            f"base model {repo_id} is an encoder-decoder model; only decoder-only causal LMs are supported"
        )


def read_weights_info(model_dir: Path, repo_id: str) -> WeightsInfo:
    """Parameter count and linear-layer shapes from the safetensors headers (no tensor is read)."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise InputError(
            f"base model {repo_id} has no .safetensors weights (Commons never loads pickled checkpoints)"
        )
    n_params, size = 0, 0
    shapes: dict[str, list[tuple[int, int]]] = {}
    for path in files:
        size += path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            shape = info["shape"]
            numel = 1
            for dim in shape:
                numel *= dim
            n_params += numel
            if len(shape) == 2 and name.endswith(".weight"):
                module = name[: -len(".weight")].rsplit(".", 1)[-1]
                shapes.setdefault(module, []).append((shape[0], shape[1]))
    return WeightsInfo(n_params, size, shapes)


def lora_parameters(info: WeightsInfo, recipe: LoraRecipe, repo_id: str) -> int:
    """Trainable parameters the recipe adds: r x (in + out) per adapted layer. Checks the targets exist."""
    missing = [m for m in recipe.target_modules if m not in info.linear_shapes]
    if missing:
        present = sorted(k for k in info.linear_shapes if k not in ("embed_tokens", "lm_head", "wte", "wpe"))
        raise InputError(
            f"recipe target_modules {missing} are not layers of {repo_id}; its linear layers are: {', '.join(present)}"
        )
    return sum(recipe.rank * (out + inp) for m in recipe.target_modules for out, inp in info.linear_shapes[m])


def estimate_memory(config: Any, info: WeightsInfo, trainable: int, recipe: LoraRecipe) -> MemoryEstimate:
    """Peak memory of one training step in float32, roughly (within ~30 % on the models we measured)."""
    text = getattr(config, "text_config", None) or config
    hidden = int(getattr(text, "hidden_size", 0) or getattr(text, "n_embd", 0) or 0)
    layers = int(getattr(text, "num_hidden_layers", 0) or getattr(text, "n_layer", 0) or 0)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    tokens = recipe.batch_size * recipe.max_seq_len
    parts = {
        "weights": info.n_params * 4,
        "adapter+optimizer": trainable * 4 * 4,  # weight, grad, Adam m and v
        "activations": tokens * layers * hidden * ACTIVATION_BYTES,
        "logits": tokens * vocab * 4 * 3,  # logits, log-softmax, their gradient
        "runtime": RUNTIME_BYTES,
    }
    return MemoryEstimate(sum(parts.values()), parts)


def available_memory(device: str) -> int:
    """Bytes this process can still allocate on `device`: free GPU memory, or RAM within any cgroup limit."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    available = _meminfo("MemAvailable") or os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = _cgroup_headroom()
    return min(available, limit) if limit is not None else available


def check_memory(estimate: MemoryEstimate, available: int, device: str) -> None:
    if estimate.total > available:
        raise InputError(
            f"the recipe needs about {estimate.total / GIB:.1f} GiB on {device} ({estimate.describe()}) but only "
            f"{available / GIB:.1f} GiB is available: lower batch_size or max_seq_len (use grad_accumulation "
            "to keep the effective batch)"
        )


def check_sequence_length(config: Any, recipe: LoraRecipe, repo_id: str) -> None:
    text = getattr(config, "text_config", None) or config
    limit = getattr(text, "max_position_embeddings", None)
    if isinstance(limit, int) and recipe.max_seq_len > limit:
        raise InputError(f"max_seq_len {recipe.max_seq_len} exceeds what {repo_id} supports ({limit} positions)")


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup_headroom() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text()))
    except (OSError, ValueError):
        return None
