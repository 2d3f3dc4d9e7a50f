"""The fallback engine: any transformers causal LM (plus a peft LoRA adapter), batched through `generate`.

transformers does the decoding (KV cache, padding, batching); two small hooks make one `generate`
call serve several requests: a logits processor that picks each row's token with that row's own
temperature, top_p and seed (through transformers' own warpers), and a stopping criterion that
hands each step's tokens to the batcher and stops the rows it says are finished.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TopPLogitsWarper,
)

from commons.serving.engine import SamplingParams, StepCallback
from commons.serving.hftext import HfTokenizerText

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class _PerRowSampling(LogitsProcessor):
    """Choose every row's next token by that row's params; return scores that make argmax pick it."""

    def __init__(self, params: list[SamplingParams]) -> None:
        self.params = params
        self.generators = [torch.Generator().manual_seed(p.seed if p.seed is not None else random.getrandbits(63))
                           for p in params]
        self.top_p = [TopPLogitsWarper(p.top_p) if p.top_p < 1.0 else None for p in params]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = torch.empty(scores.shape[0], dtype=torch.long)
        for i, p in enumerate(self.params):
            row = scores[i : i + 1].float()
            if p.greedy:
                chosen[i] = row.argmax()
                continue
            row = row / p.temperature
            warper = self.top_p[i]
            if warper is not None:
                row = warper(input_ids[i : i + 1], row)
            chosen[i] = torch.multinomial(row.softmax(-1), 1, generator=self.generators[i])[0, 0]
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(scores.shape[0]), chosen] = 0.0
        return forced  # type: ignore[return-value]


class _BatcherStops(StoppingCriteria):
    """Report each step's new tokens; a row stops when the batcher says it is finished."""

    def __init__(self, on_step: StepCallback) -> None:
        self.on_step = on_step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        done = self.on_step(input_ids[:, -1].tolist())
        return torch.tensor(done, dtype=torch.bool)  # type: ignore[return-value]


class TransformersEngine(HfTokenizerText):
    """Any `AutoModelForCausalLM` directory, optionally with a LoRA adapter merged into it."""

    name = "transformers"

    def __init__(self, model_dir: Path, adapter_dir: Path | None = None, dtype: str = "float32",
                 max_batch: int = 8) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=DTYPES[dtype])
        if adapter_dir is not None:
            from peft import PeftModel

            # Merged once at load: decoding then costs what the base model costs.
            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        self.model = model.eval()  # type: ignore[no-untyped-call]
        self.dtype = dtype
        self.max_batch = max_batch
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None else \
            self.tokenizer.eos_token_id
        self.eos_ids = frozenset(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(self.eos_ids), 0))

    def batch_key(self, params: SamplingParams) -> Hashable:
        return None  # every row samples with its own params: any requests can share a batch

    def generate_batch(self, prompts: list[list[int]], params: list[SamplingParams], on_step: StepCallback) -> None:
        width = max(len(p) for p in prompts)
        # Left padding: every row's next token lands in the same (last) column.
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        budget = min(max(p.max_tokens for p in params), self.context_length - width)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max(budget, 1), do_sample=False, pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids) or None)
        with torch.inference_mode():
            self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                logits_processor=LogitsProcessorList([_PerRowSampling(params)]),
                                stopping_criteria=StoppingCriteriaList([_BatcherStops(on_step)]))

    def close(self) -> None:
        del self.model
