"""Choosing and loading an engine by name: `transformers`, `onnx`, `vllm`, or `auto`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from commons.serving.engine import Engine

ENGINES = ("auto", "transformers", "onnx", "vllm")
# Architectures the ONNX Runtime GenAI builder exports (a subset of its list that we have checked
# the export of, or that share Llama's layout).
ONNX_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                "Phi3ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM"})


@dataclass(frozen=True)
class EngineOptions:
    dtype: str = "float32"  # transformers
    precision: str = "int4"  # onnx
    max_batch: int = 8


def choose(requested: str, model_dir: Path, adapter_dir: Path | None) -> str:
    """The engine `auto` stands for: vLLM on a GPU, else ONNX Runtime GenAI where it can export the model
    (measured fastest on CPU, bench/serve.py), else transformers (any causal LM, any adapter)."""
    if requested != "auto":
        return requested
    from commons.serving.vllm_engine import available

    if available() is None:
        return "vllm"
    architectures = json.loads((model_dir / "config.json").read_text()).get("architectures") or []
    if adapter_dir is None and find_spec("onnxruntime_genai") is not None and \
            set(architectures) & ONNX_ARCHITECTURES:
        return "onnx"
    return "transformers"


def load_engine(name: str, model_dir: Path, adapter_dir: Path | None, cache_dir: Path,
                options: EngineOptions) -> Engine:
    if name == "transformers":
        from commons.serving.transformers_engine import TransformersEngine

        return TransformersEngine(model_dir, adapter_dir, options.dtype, options.max_batch)
    if name == "onnx":
        if adapter_dir is not None:
            # The builder can fold an adapter in, but only from a local peft checkpoint of its own layout.
            raise ValueError("the onnx engine serves base models; use --engine transformers for a LoRA adapter")
        from commons.serving.onnx_engine import OnnxGenaiEngine

        return OnnxGenaiEngine(model_dir, cache_dir, options.precision, options.max_batch)
    if name == "vllm":
        from commons.serving.vllm_engine import VllmEngine

        return VllmEngine(model_dir, adapter_dir, max_batch=max(options.max_batch, 64))
    raise ValueError(f"unknown engine {name!r}: choose among {', '.join(ENGINES)}")
