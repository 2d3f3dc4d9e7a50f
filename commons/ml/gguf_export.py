"""Write a transformers Llama model directory as a GGUF file that llama.cpp, llama-cpp-python and Ollama load.

The reverse of `commons.ml.gguf_convert`, and the same layout llama.cpp's `convert_hf_to_gguf.py`
writes for `LlamaForCausalLM`:

    model.embed_tokens            -> token_embd          (dropped output when tied, as llama.cpp does)
    model.layers.N.self_attn.q_proj -> blk.N.attn_q        rows permuted to GGML's interleaved rope
    model.layers.N.self_attn.k_proj -> blk.N.attn_k        (same permutation, with the KV head count)
    ... v/o projections, gate/up/down, the two norms, model.norm -> output_norm, lm_head -> output

Tensor types per variant ("file type"):

    F32    every tensor F32: lossless, the source `commons.ml.gguf_llamacpp` hands to llama.cpp's quantizer
    F16    2-D weights F16, 1-D (norms) F32
    Q8_0   2-D weights Q8_0 (blocks of 32: one f16 scale, 32 int8), norms F32
    Q4_0   2-D weights Q4_0 (blocks of 32: one f16 scale, 32 4-bit), except the token embedding / output
           matrix, which stays Q8_0: it is the most sensitive tensor (llama-quantize keeps it at Q6_K;
           gguf-py cannot write K-quants, so Q8_0 is the nearest type we can write correctly)

A weight whose rows are not a multiple of the block size falls back to F16, as llama.cpp does.
Quantization uses `gguf.quants` (numpy; bit-exact with ggml's reference quantizers).

The tokenizer goes into the metadata as a GPT-2-style byte-level BPE (`tokenizer.ggml.model = gpt2`):
tokens, token types, merges, special token ids and the chat template.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FILE_TYPES", "GgufExportError", "export_gguf"]

FloatArray = npt.NDArray[np.float32]
Progress = Callable[[int, int, str], None]

# Variant name -> (llama.cpp LlamaFileType, tensor type for 2-D weights, tensor type for the embedding/output).
FILE_TYPES: dict[str, tuple[int, str, str]] = {
    "F32": (0, "F32", "F32"),
    "F16": (1, "F16", "F16"),
    "Q8_0": (7, "Q8_0", "Q8_0"),
    "Q4_0": (2, "Q4_0", "Q8_0"),
}

_BLOCK_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_GLOBAL_TENSORS = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}

# tokenizer.json pre-tokenizers we recognise -> llama.cpp's `tokenizer.ggml.pre` name for the same split.
_GPT2_PRE = "gpt-2"
_SMOLLM_PRE = "smollm"


class GgufExportError(ValueError):
    """The model directory cannot be written as a Llama GGUF; the message says why."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    file_type: str
    size: int
    tensor_types: dict[str, int]  # e.g. {"Q4_0": 210, "Q8_0": 1, "F32": 61}


def check_exportable(model_dir: Path) -> None:
    """Raise GgufExportError when `model_dir`'s architecture or tokenizer cannot be written, before any
    weight is read."""
    config = _read_json(model_dir / "config.json")
    _check_architecture(config)
    _read_tokenizer(model_dir, int(config["vocab_size"]))


def export_gguf(model_dir: Path, out_path: Path, file_type: str, name: str | None = None,
                progress: Progress | None = None, source_repo: str | None = None) -> ExportReport:
    """Write `model_dir` (config.json, *.safetensors, tokenizer.json) as a `file_type` GGUF at `out_path`.

    `source_repo` (a hub repo id) goes into `general.source.repo_url`: the file's direct parent, which
    the hub's lineage reads. The file appears atomically (written to a temporary sibling, then renamed).
    Raises GgufExportError.
    """
    import gguf

    if file_type not in FILE_TYPES:
        raise GgufExportError(f"unknown GGUF type {file_type!r}; known: {', '.join(FILE_TYPES)}")
    config = _read_json(model_dir / "config.json")
    _check_architecture(config)
    tokenizer = _read_tokenizer(model_dir, int(config["vocab_size"]))
    tensors = _load_weights(model_dir)
    ftype, weight_type, embed_type = FILE_TYPES[file_type]

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".partial", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    counts: dict[str, int] = {}
    try:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        _write_model_metadata(writer, config, name or model_dir.name, ftype)
        if source_repo:
            writer.add_source_repo_url(source_repo)
        _write_tokenizer_metadata(writer, tokenizer)
        tied = bool(config.get("tie_word_embeddings", False)) or "lm_head.weight" not in tensors
        items = [(hf, array) for hf, array in tensors.items() if not (tied and hf == "lm_head.weight")]
        rope_freqs = _llama3_rope_freqs(config)
        if rope_freqs is not None:
            writer.add_tensor("rope_freqs.weight", rope_freqs)
            counts["F32"] = counts.get("F32", 0) + 1
        for done, (hf_name, array) in enumerate(items, start=1):
            gguf_name = _gguf_name(hf_name)
            if gguf_name.endswith("attn_q.weight"):
                array = _permute_rope_rows(array, int(config["num_attention_heads"]))
            elif gguf_name.endswith("attn_k.weight"):
                n_kv = int(config.get("num_key_value_heads") or config["num_attention_heads"])
                array = _permute_rope_rows(array, n_kv)
            wanted = embed_type if gguf_name in ("token_embd.weight", "output.weight") else weight_type
            data, qtype = _encode(array, wanted)
            writer.add_tensor(gguf_name, data, raw_dtype=qtype)
            counts[qtype.name] = counts.get(qtype.name, 0) + 1
            if progress is not None:
                progress(done, len(items), gguf_name)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportReport(out_path, file_type, out_path.stat().st_size, counts)


# --- model --------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GgufExportError(f"{path.name} is missing")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise GgufExportError(f"{path.name} is not a JSON object")
    return data


def _check_architecture(config: dict[str, Any]) -> None:
    architectures = config.get("architectures") or []
    if config.get("model_type") != "llama" or "LlamaForCausalLM" not in architectures:
        raise GgufExportError(f"GGUF export handles Llama models only; this one is {config.get('model_type')!r} "
                              f"({', '.join(architectures) or 'no architectures'})")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise GgufExportError("Llama models with attention or MLP biases are not supported by the GGUF export")
    if config.get("hidden_act", "silu") != "silu":
        raise GgufExportError(f"llama.cpp's Llama graph uses SiLU; this model uses {config.get('hidden_act')!r}")
    if config.get("quantization_config"):
        raise GgufExportError("the model is already quantized; export from a float checkpoint")


def _load_weights(model_dir: Path) -> dict[str, FloatArray]:
    """Every tensor as float32 numpy (through torch, so bf16 checkpoints read too)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise GgufExportError("the model has no .safetensors weights")
    tensors: dict[str, FloatArray] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[key] = handle.get_tensor(key).float().numpy()
    return tensors


def _gguf_name(hf_name: str) -> str:
    module, _, param = hf_name.rpartition(".")
    if module in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[module]}.{param}"
    parts = module.split(".")
    if len(parts) >= 4 and parts[:2] == ["model", "layers"] and parts[2].isdigit():
        kind = _BLOCK_TENSORS.get(".".join(parts[3:]))
        if kind is not None:
            return f"blk.{parts[2]}.{kind}.{param}"
    raise GgufExportError(f"tensor {hf_name!r} has no llama.cpp Llama equivalent")


def _permute_rope_rows(weights: FloatArray, n_head: int) -> FloatArray:
    """HF's rotate-half row order -> GGML's interleaved rope pairs (convert_hf_to_gguf's `permute`)."""
    rows = weights.shape[0]
    permuted = weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2)
    return np.ascontiguousarray(permuted.reshape(weights.shape))


def _encode(array: FloatArray, wanted: str) -> tuple[Any, Any]:
    """(data, ggml type): 1-D tensors F32; 2-D in `wanted`, F16 if rows do not split into blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import quantize

    if array.ndim == 1:
        return np.ascontiguousarray(array, dtype=np.float32), GGMLQuantizationType.F32
    qtype = GGMLQuantizationType[wanted]
    block = GGML_QUANT_SIZES[qtype][0]
    if array.shape[-1] % block != 0:
        qtype = GGMLQuantizationType.F16
    return quantize(np.ascontiguousarray(array, dtype=np.float32), qtype), qtype


def _write_model_metadata(writer: Any, config: dict[str, Any], name: str, ftype: int) -> None:
    import gguf

    n_heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // n_heads)
    writer.add_name(name)
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or n_heads))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // n_heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    scaling = _rope_scaling(config)
    if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _rope_scaling(config: dict[str, Any]) -> dict[str, Any] | None:
    scaling = config.get("rope_scaling") or config.get("rope_parameters")
    if not isinstance(scaling, dict):
        return None
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return None
    if kind not in ("linear", "llama3"):
        raise GgufExportError(f"rope scaling {kind!r} is not supported by the GGUF export")
    return scaling


def _rope_theta(config: dict[str, Any]) -> float:
    params = config.get("rope_parameters")
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"])
    return float(config.get("rope_theta", 10000.0))


def _llama3_rope_freqs(config: dict[str, Any]) -> FloatArray | None:
    """Llama 3 rope scaling as llama.cpp stores it: per-frequency divisors in `rope_freqs.weight`."""
    scaling = _rope_scaling(config)
    if scaling is None or scaling.get("rope_type", scaling.get("type")) != "llama3":
        return None
    n_heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // n_heads)
    factor = float(scaling["factor"])
    low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
    original = float(scaling.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / _rope_theta(config) ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < original / high:
            factors.append(1.0)
        elif wavelen > original / low:
            factors.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


# --- tokenizer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tokenizer:
    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special_ids: dict[str, int]  # bos / eos / unk / pad
    add_bos: bool | None
    add_eos: bool | None
    chat_template: str | None


def _pre_tokenizer_name(pre: Any) -> str:
    """llama.cpp's name for the split a tokenizer.json pre-tokenizer performs."""
    if isinstance(pre, dict) and pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return _GPT2_PRE
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        parts = pre.get("pretokenizers") or []
        if (len(parts) == 2 and parts[0].get("type") == "Digits" and parts[0].get("individual_digits")
                and parts[1].get("type") == "ByteLevel" and parts[1].get("use_regex", True)):
            return _SMOLLM_PRE
    raise GgufExportError(f"pre-tokenizer {json.dumps(pre)[:200]} has no llama.cpp equivalent this export knows "
                          "(supported: byte-level GPT-2 split, SmolLM's digits + byte-level)")


def _read_tokenizer(model_dir: Path, vocab_size: int) -> _Tokenizer:
    from gguf import TokenType

    data = _read_json(model_dir / "tokenizer.json")
    model = data.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise GgufExportError("GGUF export handles byte-level BPE tokenizers (GPT-2 style) only")
    pre = _pre_tokenizer_name(data.get("pre_tokenizer"))
    vocab: dict[str, int] = dict(model.get("vocab") or {})
    added = {entry["content"]: entry for entry in data.get("added_tokens") or []}
    for content, entry in added.items():
        vocab[content] = int(entry["id"])
    size = max(vocab_size, max(vocab.values()) + 1)
    if size > vocab_size:
        raise GgufExportError(f"the tokenizer has {size} tokens but the model's vocab_size is {vocab_size}")
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(TokenType.UNUSED)] * vocab_size
    for token, index in vocab.items():
        tokens[index] = token
        entry = added.get(token)
        if entry is None:
            types[index] = int(TokenType.NORMAL)
        else:
            types[index] = int(TokenType.CONTROL if entry.get("special") else TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]

    config_path = model_dir / "tokenizer_config.json"
    tok_config = _read_json(config_path) if config_path.is_file() else {}
    special_ids: dict[str, int] = {}
    for key in ("bos", "eos", "unk", "pad"):
        value = tok_config.get(f"{key}_token")
        content = value.get("content") if isinstance(value, dict) else value
        if isinstance(content, str) and content in vocab:
            special_ids[key] = vocab[content]
    template = tok_config.get("chat_template")
    jinja = model_dir / "chat_template.jinja"
    if template is None and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    if isinstance(template, list):  # named templates: llama.cpp reads the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    # Written explicitly: runtimes disagree on the default when the key is absent (OpenVINO adds a BOS).
    add_bos, add_eos = tok_config.get("add_bos_token"), tok_config.get("add_eos_token")
    added_ids = _post_processor_ids(data.get("post_processor"))
    if add_bos is None:
        add_bos = "bos" in special_ids and special_ids["bos"] in added_ids
    if add_eos is None:
        add_eos = "eos" in special_ids and special_ids["eos"] in added_ids
    return _Tokenizer(pre, tokens, types, merges, special_ids, bool(add_bos), bool(add_eos),
                      template if isinstance(template, str) else None)


def _post_processor_ids(post: Any) -> set[int]:
    """Token ids a tokenizer.json post-processor adds around a single sequence (e.g. BOS)."""
    if not isinstance(post, dict):
        return set()
    if post.get("type") == "Sequence":
        return set().union(*(_post_processor_ids(p) for p in post.get("processors") or []))
    if post.get("type") != "TemplateProcessing":
        return set()
    specials = post.get("special_tokens") or {}
    ids: set[int] = set()
    for piece in post.get("single") or []:
        name = (piece.get("SpecialToken") or {}).get("id") if isinstance(piece, dict) else None
        if name in specials:
            ids.update(int(i) for i in specials[name].get("ids") or [])
    return ids


def _write_tokenizer_metadata(writer: Any, tok: _Tokenizer) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tok.pre)
    writer.add_token_list(tok.tokens)
    writer.add_token_types(tok.types)
    writer.add_token_merges(tok.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id, "unk": writer.add_unk_token_id,
              "pad": writer.add_pad_token_id}
    for key, token_id in tok.special_ids.items():
        adders[key](token_id)
    if tok.add_bos is not None:
        writer.add_add_bos_token(bool(tok.add_bos))
    if tok.add_eos is not None:
        writer.add_add_eos_token(bool(tok.add_eos))
    if tok.chat_template:
        writer.add_chat_template(tok.chat_template)
