"""vLLM for GPU deployments: continuous batching and paged attention, behind the same Engine seam.

vLLM is not a dependency of Commons (it needs a CUDA GPU and pins its own torch): install it in
the serving environment (`pip install vllm`) and start `commons serve-model REPO --engine vllm`.
The import is guarded, so this module loads anywhere; `VllmEngine` raises a clear error when vLLM
or a GPU is missing. The batcher hands a batch to `LLM.generate`, which schedules it continuously;
token-by-token streaming within a batch is not exposed by that offline API, so a batch's text
arrives when the batch ends.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

from commons.serving.engine import SamplingParams, StepCallback
from commons.serving.hftext import HfTokenizerText


def available() -> str | None:
    """None when vLLM can run here, else why not."""
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError as exc:
        return f"vLLM is not installed ({exc.name})"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


class VllmEngine(HfTokenizerText):
    name = "vllm"

    def __init__(self, model_dir: Path, adapter_dir: Path | None = None, max_batch: int = 64,
                 dtype: str = "auto") -> None:
        reason = available()
        if reason is not None:
            raise RuntimeError(f"the vllm engine cannot run here: {reason}")
        from transformers import AutoTokenizer
        from vllm import LLM

        self.llm = LLM(model=str(model_dir), dtype=dtype, enable_lora=adapter_dir is not None, max_num_seqs=max_batch)
        self.adapter_dir = adapter_dir
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.max_batch = max_batch
        self.context_length = int(self.llm.llm_engine.model_config.max_model_len)
        eos = self.tokenizer.eos_token_id
        self.eos_ids = frozenset([eos] if eos is not None else [])

    def batch_key(self, params: SamplingParams) -> Hashable:
        return None  # vLLM samples every request with its own parameters

    def generate_batch(self, prompts: list[list[int]], params: list[SamplingParams], on_step: StepCallback) -> None:
        from vllm import SamplingParams as VllmParams
        from vllm.inputs import TokensPrompt
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("adapter", 1, str(self.adapter_dir)) if self.adapter_dir else None
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts],
            [VllmParams(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, seed=p.seed)
             for p in params],
            lora_request=lora, use_tqdm=False)
        rows = [list(o.outputs[0].token_ids) for o in outputs]
        # Replay the tokens step by step, so stop strings and max_tokens are decided as for any engine.
        for step in range(max((len(r) for r in rows), default=0)):
            tokens = [r[step] if step < len(r) else next(iter(self.eos_ids), 0) for r in rows]
            if all(on_step(tokens)):
                return

    def close(self) -> None:
        del self.llm
