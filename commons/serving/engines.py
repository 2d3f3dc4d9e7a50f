"""Choosing and loading an engine by name: `transformers`, `llamacpp`, `onnx`, `vllm`, or `auto`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from commons.serving.engine import AnyEngine

ENGINES = ("auto", "transformers", "llamacpp", "onnx", "vllm")
# Architectures the ONNX Runtime GenAI builder exports (a subset of its list that we have checked
# the export of, or that share Llama's layout).
ONNX_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                "Phi3ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM"})


@dataclass(frozen=True)
class EngineOptions:
    dtype: str = "float32"  # transformers
    precision: str = "int4"  # onnx
    gguf_type: str | None = None  # llamacpp: which of the repo's GGUF files, or the type to export to
    context: int = 2048  # llamacpp: tokens of context per request
    threads: int | None = None  # llamacpp: decoding threads (None: every core this process may use)
    max_batch: int = 8


def choose(requested: str, model_dir: Path, adapter_dir: Path | None) -> str:
    """The engine `auto` stands for: vLLM on a GPU; else llama.cpp (continuous batching; chosen by
    measurement against ONNX Runtime GenAI, bench/serve.py) for a GGUF repo or a Llama checkpoint;
    else ONNX Runtime GenAI where its builder exports the model; else transformers (any causal LM,
    any adapter)."""
    if requested != "auto":
        return requested
    from commons.ml import gguf_llamacpp
    from commons.serving import llamacpp_engine
    from commons.serving.vllm_engine import available

    if available() is None:
        return "vllm"
    gguf = llamacpp_engine.has_gguf(model_dir)
    if gguf and not (model_dir / "config.json").exists():
        return "llamacpp"  # a GGUF-only repo: nothing else here reads it
    architectures = set(json.loads((model_dir / "config.json").read_text()).get("architectures") or [])
    if adapter_dir is None and gguf_llamacpp.available() and \
            (gguf or ("LlamaForCausalLM" in architectures and llamacpp_engine.can_export(model_dir))):
        return "llamacpp"
    if adapter_dir is None and find_spec("onnxruntime_genai") is not None and architectures & ONNX_ARCHITECTURES:
        return "onnx"
    return "transformers"


def load_engine(name: str, model_dir: Path, adapter_dir: Path | None, cache_dir: Path,
                options: EngineOptions) -> AnyEngine:
    if name == "transformers":
        from commons.serving.transformers_engine import TransformersEngine

        return TransformersEngine(model_dir, adapter_dir, options.dtype, options.max_batch)
    if name == "llamacpp":
        if adapter_dir is not None:
            raise ValueError("the llamacpp engine serves base models; use --engine transformers for a LoRA adapter")
        from commons.ml import gguf_llamacpp
        from commons.serving import llamacpp_engine

        if not gguf_llamacpp.available():
            raise ValueError(f"the llamacpp engine needs {gguf_llamacpp.PACKAGE}, which is not installed")
        path = llamacpp_engine.model_file(model_dir, cache_dir / "gguf", options.gguf_type)
        return llamacpp_engine.LlamaCppEngine(path, options.max_batch, options.context, options.threads)
    if name == "onnx":
        if adapter_dir is not None:
            # The builder can fold an adapter in, but only from a local peft checkpoint of its own layout.
            raise ValueError("the onnx engine serves base models; use --engine transformers for a LoRA adapter")
        from commons.serving.onnx_engine import OnnxGenaiEngine

        return OnnxGenaiEngine(model_dir, cache_dir / "onnx", options.precision, options.max_batch)
    if name == "vllm":
        from commons.serving.vllm_engine import VllmEngine

        return VllmEngine(model_dir, adapter_dir, max_batch=max(options.max_batch, 64))
    raise ValueError(f"unknown engine {name!r}: choose among {', '.join(ENGINES)}")
