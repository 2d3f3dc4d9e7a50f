"""Variants from file headers: what a GGUF or a safetensors checkpoint holds, without reading a weight.

Pure: callers read the headers (`commons.scanning`) and config.json and pass them in.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from commons.fit.estimate import Shape, Variant
from commons.scanning.gguf import GgufHeader
from commons.scanning.safetensors import SafetensorsHeader

# llama.cpp's general.file_type values (LlamaFileType) for the types we name.
_GGUF_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
                    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
                    17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}
# torchao stores a quantized weight `w` as `w_qdata` plus scales/zero points named `_w_scale`, ...
_TORCHAO_PARTS = ("_scale", "_zero_point", "_scale_and_zero", "_per_tensor_scale", "_act_pre_scale")
_DTYPE_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}
_EMBEDDINGS = ("model.embed_tokens.weight", "transformer.wte.weight", "model.embed_tokens._weight_qdata")


def shape_from_config(config: dict[str, Any] | None) -> Shape | None:
    if not config:
        return None
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    try:
        layers = int(text.get("num_hidden_layers") or text["n_layer"])
        heads = int(text.get("num_attention_heads") or text["n_head"])
        hidden = int(text.get("hidden_size") or text["n_embd"])
    except (KeyError, TypeError, ValueError):
        return None
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or hidden // heads)
    max_context = text.get("max_position_embeddings") or text.get("n_positions")
    return Shape(layers, kv_heads, head_dim, int(max_context) if max_context else None)


def shape_from_gguf(header: GgufHeader) -> Shape | None:
    arch = header.architecture
    meta = header.metadata

    def number(key: str) -> int | None:
        value = meta.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    layers, heads, hidden = number("block_count"), number("attention.head_count"), number("embedding_length")
    if arch is None or not layers or not heads or not hidden:
        return None
    kv_heads = number("attention.head_count_kv") or heads
    head_dim = number("attention.key_length") or hidden // heads
    return Shape(layers, kv_heads, head_dim, number("context_length"))


def gguf_variant(repo_id: str, path: str, header: GgufHeader, file_size: int) -> Variant:
    file_type = header.metadata.get("general.file_type")
    precision = _GGUF_FILE_TYPES.get(file_type) if isinstance(file_type, int) else None
    if precision is None:  # name it by its most common tensor type
        counts = Counter(t.ggml_type for t in header.tensors if len(t.shape) > 1)
        precision = counts.most_common(1)[0][0] if counts else "unknown"
    weight_bytes = sum(t.n_bytes for t in header.tensors)
    names = {t.name for t in header.tensors}
    lookup_only = sum(t.n_bytes for t in header.tensors if t.name == "token_embd.weight") \
        if "output.weight" in names else 0
    return Variant(repo_id, path, "gguf", precision, header.parameter_count, weight_bytes or file_size,
                   weight_bytes - lookup_only, shape_from_gguf(header))


def safetensors_variant(repo_id: str, folder: str, headers: list[SafetensorsHeader],
                        config: dict[str, Any] | None) -> Variant:
    """One checkpoint (all its shards). Quantized (torchao) weights count once, without their scales."""
    n_params, weight_bytes, by_dtype = 0, 0, Counter[str]()
    embed_bytes, has_output = 0, False
    for header in headers:
        for tensor in header.tensors:
            weight_bytes += tensor.n_bytes
            leaf = tensor.name.rsplit(".", 1)[-1]
            if leaf.startswith("_") and leaf.endswith(_TORCHAO_PARTS):
                continue
            n_params += tensor.n_params
            by_dtype[tensor.dtype] += tensor.n_params
            if tensor.name in _EMBEDDINGS:
                embed_bytes += tensor.n_bytes
            has_output = has_output or tensor.name.startswith("lm_head.")
    precision = _precision(config, by_dtype)
    streamed = weight_bytes - (embed_bytes if has_output else 0)
    return Variant(repo_id, folder, "safetensors", precision, n_params, weight_bytes, streamed,
                   shape_from_config(config))


def _precision(config: dict[str, Any] | None, by_dtype: Counter[str]) -> str:
    quant = (config or {}).get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "quantized"))
        kind = quant.get("quant_type")
        if isinstance(kind, dict) and isinstance(kind.get("default"), dict):
            kind = kind["default"]
        name = str(kind.get("_type", "")) if isinstance(kind, dict) else ""
        data = kind.get("_data") if isinstance(kind, dict) else None
        bits = re.search(r"Int(\d)", name)
        if name.startswith("Intx") and isinstance(data, dict):  # IntxWeightOnlyConfig: bits in weight_dtype
            dtype = data.get("weight_dtype")
            bits = re.search(r"int(\d)", str(dtype.get("_data") if isinstance(dtype, dict) else dtype))
        return f"int{bits[1]} ({method})" if bits else method
    if not by_dtype:
        return "unknown"
    dtype = by_dtype.most_common(1)[0][0]
    return _DTYPE_NAMES.get(dtype, dtype.lower())
