"""Convert a GGUF file of a Llama-architecture model into a plain transformers model directory.

The result is what `LlamaForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load without
any GGUF support: `config.json`, `generation_config.json`, a float32 `model.safetensors` and the
tokenizer files. Only numpy is used for the weights (no torch), so this runs on a bare server.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gguf import GGMLQuantizationType, GGUFReader, ReaderTensor
from gguf.quants import dequantize
from safetensors.numpy import save_file

__all__ = ["ConversionReport", "convert_gguf"]

Progress = Callable[[int, int, str], None]
FloatArray = npt.NDArray[np.float32]

SUPPORTED_ARCHITECTURES = ("llama",)

# GGUF per-block tensor names (llama.cpp's) -> the module path inside a transformers Llama layer.
_BLOCK_TENSORS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_RE = re.compile(r"blk\.(?P<layer>\d+)\.(?P<kind>\w+)\.(?P<param>weight|bias)")
_GLOBAL_RE = re.compile(r"(?P<kind>\w+)\.(?P<param>weight|bias)")
# llama.cpp stores Llama 3's rope scaling as per-frequency divisors in this tensor, not as metadata.
_ROPE_FREQS = "rope_freqs.weight"

# general.* keys that describe the file rather than the model, so they are not worth reporting.
_TECHNICAL_GENERAL_KEYS = {"architecture", "alignment", "file_type", "quantization_version"}

# The special tokens transformers names from GGUF token ids (see its `get_gguf_tokenizer`).
_SPECIAL_TOKEN_KEYS = {
    "bos_token": "bos_token_id",
    "eos_token": "eos_token_id",
    "unk_token": "unknown_token_id",
    "pad_token": "padding_token_id",
}


@dataclass(frozen=True)
class ConversionReport:
    """What was converted, from what, and into which files."""

    source_sha256: str
    source_size: int
    architecture: str
    quantization: str  # e.g. "Q4_1 (210 tensors), Q8_0 (1), F32 (61)"
    n_params: int
    files: list[str]
    metadata: dict[str, str]  # general.* keys of the GGUF (name, license, ...), without the prefix


def convert_gguf(gguf_path: Path, out_dir: Path, progress: Progress | None = None) -> ConversionReport:
    """Convert `gguf_path` into a transformers directory at `out_dir` (which must not exist, or be empty).

    Everything is written into a temporary sibling directory that is renamed into place at the end,
    so `out_dir` is either absent or complete. Raises ValueError for files this cannot convert.
    """
    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not an empty directory")

    reader = GGUFReader(gguf_path)
    metadata = _read_metadata(reader)
    architecture = str(metadata.get("general.architecture", ""))
    if architecture not in SUPPORTED_ARCHITECTURES:
        supported = ", ".join(SUPPORTED_ARCHITECTURES)
        raise ValueError(f"unsupported GGUF architecture {architecture!r}; this converter handles: {supported}")
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    config = _llama_config(metadata, tensors)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        _write_json(tmp_dir / "config.json", config)
        _write_json(tmp_dir / "generation_config.json", _generation_config(metadata, config))
        # The tokenizer first: it is quick, and an unsupported one should fail before the slow part.
        _write_tokenizer(metadata, architecture, config["max_position_embeddings"], tmp_dir)

        state_dict = _convert_tensors(reader.tensors, config, progress)
        _check_shapes(state_dict, config)
        save_file(state_dict, str(tmp_dir / "model.safetensors"), metadata={"format": "pt"})
        n_params = sum(int(array.size) for array in state_dict.values())
        del state_dict  # the float32 copy is by far the biggest thing alive

        files = sorted(str(path.relative_to(tmp_dir)) for path in tmp_dir.rglob("*") if path.is_file())
        # mkdtemp makes the directory private (0700), and safetensors writes its file 0600; a model
        # directory is meant to be read by whoever serves it.
        os.chmod(tmp_dir, 0o755)
        for name in files:
            os.chmod(tmp_dir / name, 0o644)
        # Atomic on POSIX; replaces an empty `out_dir` and fails, leaving it alone, on a non-empty one.
        os.replace(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    return ConversionReport(
        source_sha256=_sha256(gguf_path),
        source_size=gguf_path.stat().st_size,
        architecture=architecture,
        quantization=_quantization_summary(reader.tensors),
        n_params=n_params,
        files=files,
        metadata=_general_metadata(metadata),
    )


# --- metadata -----------------------------------------------------------------------------------


def _read_metadata(reader: GGUFReader) -> dict[str, Any]:
    """All key/value pairs as Python values (str, int, float, bool, or lists of those)."""
    # "GGUF.*" are the reader's own pseudo-fields (version, counts), not file metadata.
    return {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}


def _f32(value: Any) -> float:
    """A float32 metadata value written as its shortest decimal (1e-05, not 9.999999747378752e-06)."""
    # Same float32 bits either way, and the model computes in float32, so nothing changes but readability.
    return float(str(np.float32(value)))


def _llama_config(metadata: dict[str, Any], tensors: dict[str, ReaderTensor]) -> dict[str, Any]:
    """LlamaConfig fields from llama.cpp's `llama.*` keys, plus what only the tensors tell."""
    arch = "llama"

    def key(name: str) -> Any:
        full = f"{arch}.{name}"
        if full not in metadata:
            raise ValueError(f"GGUF metadata lacks {full!r}, which the Llama config needs")
        return metadata[full]

    if f"{arch}.expert_count" in metadata:
        raise ValueError("mixture-of-experts Llama GGUFs (Mixtral-style) are not supported")
    if "token_embd.weight" not in tensors:
        raise ValueError("GGUF has no token_embd.weight tensor")

    hidden_size = int(key("embedding_length"))
    n_heads = int(key("attention.head_count"))
    n_kv_heads = int(metadata.get(f"{arch}.attention.head_count_kv", n_heads))
    head_dim = int(metadata.get(f"{arch}.attention.key_length", hidden_size // n_heads))
    rope_dim = int(metadata.get(f"{arch}.rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise ValueError(f"partial rotary embeddings ({rope_dim} of {head_dim} dims) are not supported")
    rope_theta = _f32(metadata.get(f"{arch}.rope.freq_base", 10000.0))
    # The embedding matrix is the ground truth for the vocabulary size: the model cannot run otherwise.
    vocab_size = int(tensors["token_embd.weight"].shape[-1])

    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": int(key("feed_forward_length")),
        "num_hidden_layers": int(key("block_count")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",  # llama.cpp's llama graph hard-codes SiLU
        "max_position_embeddings": int(key("context_length")),
        "rms_norm_eps": _f32(key("attention.layer_norm_rms_epsilon")),
        "rope_theta": rope_theta,
        "rope_scaling": _rope_scaling(metadata, tensors, rope_theta, head_dim),
        # llama.cpp only writes biases that exist, so their presence is the flag.
        "attention_bias": any(name.endswith(".attn_q.bias") for name in tensors),
        "mlp_bias": any(name.endswith(".ffn_up.bias") for name in tensors),
        # llama.cpp drops output.weight when it is the embedding matrix.
        "tie_word_embeddings": "output.weight" not in tensors,
        "bos_token_id": metadata.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": metadata.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": metadata.get("tokenizer.ggml.padding_token_id"),
        "torch_dtype": "float32",
        "use_cache": True,
    }
    return config


def _rope_scaling(
    metadata: dict[str, Any], tensors: dict[str, ReaderTensor], rope_theta: float, head_dim: int
) -> dict[str, Any] | None:
    """The HF `rope_scaling` dict, from metadata (linear) or from the rope_freqs tensor (Llama 3)."""
    scaling_type = metadata.get("llama.rope.scaling.type", "none")
    if _ROPE_FREQS in tensors:
        if scaling_type not in ("none", "llama3"):
            raise ValueError(f"rope_freqs together with rope scaling {scaling_type!r} is not supported")
        factors = _dequantize(tensors[_ROPE_FREQS]).astype(np.float64)
        return _llama3_rope_scaling(factors, rope_theta, head_dim)
    if scaling_type == "none":
        return None
    if scaling_type == "linear":
        return {"rope_type": "linear", "factor": _f32(metadata["llama.rope.scaling.factor"])}
    raise ValueError(f"rope scaling {scaling_type!r} is not supported")


def _llama3_rope_scaling(factors: npt.NDArray[np.float64], rope_theta: float, head_dim: int) -> dict[str, Any] | None:
    """Recover Llama 3's rope_scaling parameters from llama.cpp's per-frequency factors.

    The file keeps only the factors, not the parameters that produced them, so we recompute the
    factors for the parameters every Llama 3.x release uses and accept them only if they match.
    """
    if factors.shape != (head_dim // 2,):
        raise ValueError(f"rope_freqs has shape {factors.shape}, expected ({head_dim // 2},)")
    if np.all(factors == 1.0):
        return None
    factor = float(factors.max())
    low_freq_factor, high_freq_factor, original_context = 1.0, 4.0, 8192
    inv_freq = 1.0 / rope_theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / inv_freq
    smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    expected = np.where(
        wavelen < original_context / high_freq_factor,
        1.0,
        np.where(wavelen > original_context / low_freq_factor, factor, 1 / ((1 - smooth) / factor + smooth)),
    )
    # llama.cpp computes these in float32, hence the tolerance.
    if not np.allclose(factors, expected, rtol=1e-5, atol=0):
        raise ValueError("rope_freqs does not match Llama 3 rope scaling; this rope variant is not supported")
    return {
        "rope_type": "llama3",
        "factor": _f32(factor),
        "low_freq_factor": low_freq_factor,
        "high_freq_factor": high_freq_factor,
        "original_max_position_embeddings": original_context,
    }


def _generation_config(metadata: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Token ids generation needs; an end-of-turn token distinct from EOS must stop generation too."""
    eos: list[int] = []
    for name in ("eos_token_id", "eot_token_id", "eom_token_id"):
        token_id = metadata.get(f"tokenizer.ggml.{name}")
        if token_id is not None and int(token_id) not in eos:
            eos.append(int(token_id))
    generation: dict[str, Any] = {"bos_token_id": config["bos_token_id"]}
    generation["eos_token_id"] = eos[0] if len(eos) == 1 else (eos or None)
    generation["pad_token_id"] = config["pad_token_id"]
    return {name: value for name, value in generation.items() if value is not None}


def _general_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """general.* keys (name, license, ...) as strings, for a model card."""
    result: dict[str, str] = {}
    for full_key, value in metadata.items():
        if not full_key.startswith("general."):
            continue
        name = full_key.removeprefix("general.")
        if name in _TECHNICAL_GENERAL_KEYS:
            continue
        result[name] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return result


# --- tensors ------------------------------------------------------------------------------------


def _dequantize(tensor: ReaderTensor) -> FloatArray:
    """The tensor as a C-contiguous float32 array in numpy (row-major, HF) order."""
    try:
        values = dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as exc:
        raise ValueError(f"{tensor.name}: cannot dequantize {tensor.tensor_type.name}") from exc
    # GGUF lists dimensions fastest-first; numpy wants them slowest-first.
    shape = tuple(int(dim) for dim in reversed(tensor.shape.tolist()))
    # np.array copies, which matters for F32: dequantize returns a view of the read-only memory map.
    return np.array(values, dtype=np.float32, order="C").reshape(shape)


def _unpermute_rope_rows(weights: FloatArray, n_head: int) -> FloatArray:
    """Undo llama.cpp's q/k row permutation (HF's rotate-half layout -> GGML's interleaved rope).

    Mirrors `LlamaTensorProcessor._reverse_permute_weights` in transformers' GGUF loader.
    """
    dim = weights.shape[0] // n_head // 2
    unpermuted = weights.reshape(n_head, dim, 2, *weights.shape[1:]).swapaxes(2, 1).reshape(weights.shape)
    return np.ascontiguousarray(unpermuted)


def _hf_name(gguf_name: str) -> str:
    """The transformers parameter name for a GGUF tensor name."""
    if match := _BLOCK_RE.fullmatch(gguf_name):
        kind = match["kind"]
        if kind in _BLOCK_TENSORS:
            return f"model.layers.{match['layer']}.{_BLOCK_TENSORS[kind]}.{match['param']}"
    elif (match := _GLOBAL_RE.fullmatch(gguf_name)) and match["kind"] in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[match['kind']]}.{match['param']}"
    raise ValueError(f"GGUF tensor {gguf_name!r} has no Llama equivalent; is this a Llama model?")


def _convert_tensors(
    tensors: list[ReaderTensor], config: dict[str, Any], progress: Progress | None
) -> dict[str, FloatArray]:
    """Dequantize tensor by tensor into an HF-named float32 state dict."""
    state_dict: dict[str, FloatArray] = {}
    total = len(tensors)
    for done, tensor in enumerate(tensors, start=1):
        if tensor.name != _ROPE_FREQS:  # already folded into config["rope_scaling"]
            weights = _dequantize(tensor)
            if ".attn_q." in tensor.name:
                weights = _unpermute_rope_rows(weights, config["num_attention_heads"])
            elif ".attn_k." in tensor.name:
                weights = _unpermute_rope_rows(weights, config["num_key_value_heads"])
            name = _hf_name(tensor.name)
            if name in state_dict:
                raise ValueError(f"GGUF holds {tensor.name!r} twice")
            state_dict[name] = weights
        if progress is not None:
            progress(done, total, tensor.name)
    return state_dict


def _check_shapes(state_dict: dict[str, FloatArray], config: dict[str, Any]) -> None:
    """Fail here, with the tensor named, rather than in from_pretrained on someone else's machine."""
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q_rows = config["num_attention_heads"] * config["head_dim"]
    kv_rows = config["num_key_value_heads"] * config["head_dim"]
    expected: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.norm.weight": (hidden,),
    }
    if not config["tie_word_embeddings"]:
        expected["lm_head.weight"] = (vocab, hidden)
    layer_shapes = {
        "self_attn.q_proj": (q_rows, hidden),
        "self_attn.k_proj": (kv_rows, hidden),
        "self_attn.v_proj": (kv_rows, hidden),
        "self_attn.o_proj": (hidden, q_rows),
        "mlp.gate_proj": (inter, hidden),
        "mlp.up_proj": (inter, hidden),
        "mlp.down_proj": (hidden, inter),
        "input_layernorm": (hidden,),
        "post_attention_layernorm": (hidden,),
    }
    for layer in range(config["num_hidden_layers"]):
        for module, shape in layer_shapes.items():
            expected[f"model.layers.{layer}.{module}.weight"] = shape
            if module.startswith("self_attn") and config["attention_bias"]:
                expected[f"model.layers.{layer}.{module}.bias"] = shape[:1]
            if module.startswith("mlp") and config["mlp_bias"]:
                expected[f"model.layers.{layer}.{module}.bias"] = shape[:1]
    if missing := sorted(expected.keys() - state_dict.keys()):
        raise ValueError(f"GGUF lacks tensors for: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if extra := sorted(state_dict.keys() - expected.keys()):
        raise ValueError(f"GGUF has tensors the Llama config does not use: {', '.join(extra[:5])}")
    for name, shape in expected.items():
        if state_dict[name].shape != shape:
            raise ValueError(f"{name} has shape {state_dict[name].shape}, the config implies {shape}")


def _quantization_summary(tensors: list[ReaderTensor]) -> str:
    """E.g. "Q4_1 (210 tensors), Q8_0 (1), F32 (61)", most common type first."""
    counts = Counter(GGMLQuantizationType(tensor.tensor_type).name for tensor in tensors)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(
        f"{name} ({count} tensors)" if index == 0 else f"{name} ({count})"
        for index, (name, count) in enumerate(ordered)
    )


# --- tokenizer ----------------------------------------------------------------------------------


def _write_tokenizer(metadata: dict[str, Any], architecture: str, max_length: int, out_dir: Path) -> None:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json, built by transformers itself.

    This repeats `get_gguf_tokenizer` from transformers' GGUF support on our metadata (its own reader
    imports torch) and hands the result to its `convert_gguf_tokenizer`, so tokenizer.json is the one
    `AutoTokenizer.from_pretrained(..., gguf_file=...)` would build.
    """
    # Imported here: transformers is heavy, and only this step needs it.
    from transformers import PreTrainedTokenizerFast

    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import (
            GGUF_TOKENIZER_MAPPING,
            convert_gguf_tokenizer,
        )
    except ImportError as exc:  # transformers 4.x kept this elsewhere, with a different contract
        raise ImportError(
            "converting a GGUF tokenizer needs transformers 5 (transformers.integrations.gguf; tested with 5.24)"
        ) from exc

    if "tokenizer.ggml.tokens" not in metadata:
        raise ValueError("GGUF has no tokenizer (tokenizer.ggml.tokens is missing)")
    tokenizer_dict: dict[str, Any] = {}
    tokenizer_config: dict[str, Any] = {}
    for group, target in (("tokenizer", tokenizer_dict), ("tokenizer_config", tokenizer_config)):
        for gguf_key, name in GGUF_TOKENIZER_MAPPING[group].items():
            if f"tokenizer.{gguf_key}" in metadata:
                target[name] = metadata[f"tokenizer.{gguf_key}"]
    tokenizer_type = tokenizer_dict.get("tokenizer_type")
    if tokenizer_type == "llama":
        # As transformers does: older sentencepiece files have no flag, and llama.cpp adds BOS to them.
        tokenizer_config.setdefault("add_bos_token", True)
    elif tokenizer_type == "gemma4":
        tokenizer_config["add_bos_token"] = False
    tokens = tokenizer_dict["tokens"]
    for name, key in _SPECIAL_TOKEN_KEYS.items():
        token_id = metadata.get(f"tokenizer.ggml.{key}")
        tokenizer_config[name] = tokens[token_id] if token_id is not None else None

    backend, extra_kwargs = convert_gguf_tokenizer(architecture, tokenizer_dict)
    # transformers' __init__ is unannotated, hence the ignore.
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, **tokenizer_config, **extra_kwargs, model_max_length=max_length
    )
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json, where every
    # transformers version (and most other tools) look for it.
    tokenizer.save_pretrained(str(out_dir), save_jinja_files=False)

    config_path = out_dir / "tokenizer_config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    # transformers 5 writes its own class name ("TokenizersBackend"), which 4.x cannot resolve;
    # every version maps "PreTrainedTokenizerFast" to the plain tokenizer.json-backed class.
    saved["tokenizer_class"] = "PreTrainedTokenizerFast"
    _write_json(config_path, saved, sort_keys=True)
    _write_json(out_dir / "special_tokens_map.json", dict(tokenizer.special_tokens_map), sort_keys=True)


# --- files --------------------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any], sort_keys: bool = False) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
