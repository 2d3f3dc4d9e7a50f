"""Weight-only int8 / int4 checkpoints through torchao that `from_pretrained` loads back (safetensors).

Why torchao: transformers 5 serialises torchao tensor subclasses to safetensors and rebuilds them on
load (`TorchAoConfig`, `quantization_config` in config.json), and torchao is PyTorch's own maintained
quantization library. optimum-quanto's transformers integration refuses to save (`is_serializable`
is False in transformers 5) and the project is in maintenance mode.

What each variant stores (only the weights of `nn.Linear` layers in the decoder blocks are quantized;
the token embedding and `lm_head` stay float32: for a 135 M model with a 49 k vocabulary they are a
fifth of the parameters and the most sensitive ones, and torch's per-tensor int8 over everything
tripled perplexity):

    int8   Int8WeightOnlyConfig, symmetric, one scale per `group_size` weights of a row
    int4   IntxWeightOnlyConfig(int4), symmetric, one scale per `group_size` (default 32) weights.
           On CPU, torchao's only int4 layout that serialises is IntxUnpackedToInt8Tensor: the values
           are int4 but stored one per byte, so the file is as large as int8. Its 4-bit packed layouts
           (Int4WeightOnlyConfig) need CUDA/XPU kernels. For 4-bit files on CPU, use the Q4_0 GGUF.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Files copied from the source so each variant folder loads on its own.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                   "generation_config.json")
GROUP_CHOICES = (128, 64, 32)
INT4_DEFAULT_GROUP = 32


def linear_inputs(model: Any) -> set[int]:
    """in_features of every quantizable linear layer (lm_head excluded: it stays float)."""
    import torch

    return {m.in_features for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head")}


def pick_group_size(in_features: set[int], wanted: int | None, bits: int) -> int:
    """`wanted`, or the largest standard group that divides every linear input (int4: at most 32)."""
    choices = [g for g in GROUP_CHOICES if bits == 8 or g <= INT4_DEFAULT_GROUP]
    if wanted is not None:
        choices = [wanted]
    for group in choices:
        if all(n % group == 0 for n in in_features):
            return group
    raise ValueError(f"no group size in {choices} divides every linear layer's input size {sorted(in_features)}")


def quant_config(bits: int, group_size: int) -> Any:
    import torch
    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, PerGroup
    from transformers import TorchAoConfig

    if bits == 8:
        base: Any = Int8WeightOnlyConfig(granularity=PerGroup(group_size))
    elif bits == 4:
        base = IntxWeightOnlyConfig(weight_dtype=torch.int4,  # type: ignore[attr-defined]
                                     granularity=PerGroup(group_size))
    else:
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    return TorchAoConfig(base)


def write_variant(source_dir: Path, out_dir: Path, bits: int, group_size: int) -> Any:
    """Quantize the float checkpoint in `source_dir` and save it to `out_dir` (atomically); returns the model."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(source_dir, dtype=torch.float32,
                                                 quantization_config=quant_config(bits, group_size))
    model.eval()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (source_dir / name).is_file() and not (tmp / name).exists():
                shutil.copyfile(source_dir / name, tmp / name)
        _check_saved(tmp)
        os.chmod(tmp, 0o755)
        for path in tmp.iterdir():
            os.chmod(path, 0o644)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model


def _check_saved(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    if config.get("quantization_config", {}).get("quant_method") != "torchao":
        raise RuntimeError("transformers did not record the torchao quantization_config in config.json")
    if not any(folder.glob("*.safetensors")):
        raise RuntimeError("transformers wrote no safetensors file for the quantized model")


def load_variant(folder: Path) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(folder)
    return model.eval()
