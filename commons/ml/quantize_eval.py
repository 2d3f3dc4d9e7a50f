"""Measure what a quantized variant costs: perplexity and next-token agreement against the source, and speed.

    held-out text   Python's language reference (`pydoc_data.topics`, shipped with CPython), topics
                    sorted by name: the same text on every machine, no download, English prose + code
    perplexity      exp(mean NLL) over non-overlapping windows; the first token of a window is context only
    agreement       share of scored positions where the variant's argmax equals the source model's argmax
    decode tok/s    greedy generation at batch 1, new tokens only, after one warm-up run

Every variant is scored on the same token ids (tokenised once with the source tokenizer).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scores:
    """Per-position results of scoring one model on the held-out ids."""

    nll_sum: float
    count: int
    argmax: Any  # LongTensor (count,): the model's top-1 next-token prediction at each scored position

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_sum / self.count)

    def agreement(self, other: Scores) -> float:
        return float((self.argmax == other.argmax).double().mean().item())


def held_out_text() -> str:
    """The evaluation text (deterministic for a given CPython minor version)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def held_out_ids(tokenizer: Any, n_tokens: int) -> Any:
    """The first `n_tokens` token ids of the held-out text, as a LongTensor (1-D)."""
    import torch

    ids = tokenizer(held_out_text(), add_special_tokens=False)["input_ids"][:n_tokens]
    return torch.tensor(ids, dtype=torch.long)


def score(model: Any, ids: Any, window: int) -> Scores:
    """NLL (float64) and argmax of `model` over `ids` in non-overlapping windows of `window` tokens."""
    import torch

    nll, count, preds = 0.0, 0, []
    with torch.inference_mode():
        for start in range(0, ids.numel() - 1, window):
            chunk = ids[start:start + window].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            logits = model(chunk).logits[0, :-1].double()
            targets = chunk[0, 1:]
            nll += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
            count += targets.numel()
            preds.append(logits.argmax(-1))
    return Scores(nll, count, torch.cat(preds))


def prompt_ids(tokenizer: Any) -> Any:
    """A short fixed prompt for the speed runs (chat template when the tokenizer has one)."""
    import torch

    question = "Explain what a hash table is and when to use one."
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(question)["input_ids"]
    return torch.tensor([ids], dtype=torch.long)


def decode_tokens_per_s(model: Any, prompt: Any, n_tokens: int) -> float:
    """Greedy decode speed at batch 1 through transformers: new tokens / (generate time - prefill time)."""
    import torch

    def generate(n: int) -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=model.config.eos_token_id or 0)
        return time.perf_counter() - t0

    generate(2)  # warm-up: first-call allocations, lazy kernels
    prefill = generate(1)
    total = generate(n_tokens + 1)
    return n_tokens / max(total - prefill, 1e-9)


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def llama_cpp_tokens_per_s(gguf_path: str, prompt: list[int], n_tokens: int, threads: int | None) -> float:
    """Greedy decode speed of a GGUF through llama-cpp-python (new tokens only, after a warm-up)."""
    from llama_cpp import Llama

    # Typed as Any: mypy's view of llama-cpp-python must not depend on whether it is installed.
    llm: Any = Llama(model_path=gguf_path, n_ctx=max(256, len(prompt) + n_tokens + 8), n_threads=threads,
                verbose=False)

    def run(n: int) -> float:
        llm.reset()
        t0 = time.perf_counter()
        for i, _ in enumerate(llm.generate(prompt, temp=0.0, top_k=1, reset=True)):
            if i + 1 >= n:
                break
        return time.perf_counter() - t0

    run(2)
    prefill = run(1)
    total = run(n_tokens + 1)
    llm.close()
    return n_tokens / max(total - prefill, 1e-9)
