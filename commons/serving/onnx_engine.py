"""The fast CPU engine: ONNX Runtime GenAI (prebuilt wheels), chosen by measurement (bench/serve.py).

The model directory is exported once with the library's own model builder (`onnxruntime_genai.models.
builder`: Llama, Mistral, Qwen, Phi, Gemma and more; int4 is block-wise RTN with block 32, fp32 is
exact) into a cache directory keyed by the source, and reused from then on. The transformers
tokenizer of the source directory encodes, decodes and renders the chat template, so every engine
tokenises alike. A batch runs as one ORT GenAI generator with `batch_size` rows (left-padded);
its search options are per generator, so only requests with the same sampling share a batch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from commons.serving.engine import SamplingParams, StepCallback
from commons.serving.exports import source_key
from commons.serving.hftext import HfTokenizerText

PRECISIONS = ("int4", "fp32")


def export(model_dir: Path, cache_dir: Path, precision: str) -> Path:
    """The ONNX export of `model_dir` at `precision`, built into the cache when missing (atomically)."""
    import onnxruntime_genai as og

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    target = cache_dir / f"{model_dir.name}-{source_key(model_dir, precision, og.__version__)}-{precision}"
    if (target / "genai_config.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        # The builder in its own process: it loads the whole torch model, which this process then
        # does not keep in memory.
        out = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(model_dir),
                              "-o", str(tmp / "model"), "-p", precision, "-e", "cpu", "-c", str(tmp / "work")],
                             capture_output=True, text=True)
        if out.returncode != 0 or not (tmp / "model" / "genai_config.json").exists():
            raise RuntimeError(f"the ONNX Runtime GenAI builder failed: {out.stderr[-2000:]}")
        os.replace(tmp / "model", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class OnnxGenaiEngine(HfTokenizerText):
    """A causal LM exported by ONNX Runtime GenAI's builder, decoded by its generator."""

    name = "onnxruntime-genai"

    def __init__(self, model_dir: Path, cache_dir: Path, precision: str = "int4", max_batch: int = 8) -> None:
        import onnxruntime_genai as og
        from transformers import AutoTokenizer

        self.precision = precision
        self.onnx_dir = export(model_dir, cache_dir, precision)
        self.model = og.Model(str(self.onnx_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        config = json.loads((self.onnx_dir / "genai_config.json").read_text())["model"]
        self.context_length = int(config.get("context_length", 2048))
        eos = config.get("eos_token_id")
        self.eos_ids = frozenset(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.pad_id = int(config.get("pad_token_id", next(iter(self.eos_ids), 0)))
        self.max_batch = max_batch

    def batch_key(self, params: SamplingParams) -> Hashable:
        return ("greedy",) if params.greedy else (params.temperature, params.top_p, params.seed)

    def generate_batch(self, prompts: list[list[int]], params: list[SamplingParams], on_step: StepCallback) -> None:
        import numpy as np
        import onnxruntime_genai as og

        width = max(len(p) for p in prompts)
        budget = min(max(p.max_tokens for p in params), self.context_length - width)
        first = params[0]
        options: dict[str, Any] = {"batch_size": len(prompts), "max_length": width + max(budget, 1),
                                   "do_sample": not first.greedy}
        if not first.greedy:
            options.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
            if first.seed is not None:
                options["random_seed"] = first.seed
        search = og.GeneratorParams(self.model)
        search.set_search_options(**options)
        generator = og.Generator(self.model, search)
        # Left padding with the pad id, from which ORT GenAI derives the attention mask.
        generator.append_tokens(np.array([[self.pad_id] * (width - len(p)) + p for p in prompts], dtype=np.int32))
        while not generator.is_done():
            generator.generate_next_token()
            if all(on_step([int(t) for t in generator.get_next_tokens()])):
                return

    def close(self) -> None:
        del self.model
