"""Greedy generation for the safety tasks: prompts in, replies out, batched and length-sorted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["format_prompt", "generate"]


def format_prompt(tokenizer: Any, prompt: str, chat: bool = True) -> str:
    """The prompt as the model sees it: one user turn in the tokenizer's chat template (if it has one)."""
    if chat and getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True))
    return prompt


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    chat: bool = True,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy replies (special tokens stripped). Batches are left-padded and sorted by prompt length,
    so a reply does not depend on which other prompts share its batch (up to float rounding)."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    texts = [format_prompt(tokenizer, p, chat) for p in prompts]
    special = {} if not chat else {"add_special_tokens": False}  # the template already has them
    encoded = [tokenizer(t, **special)["input_ids"] for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                              eos_token_id=tokenizer.eos_token_id)
    order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
    replies = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, i in enumerate(chunk):
            n = len(encoded[i])
            ids[r, width - n :] = torch.tensor(encoded[i])
            mask[r, width - n :] = 1
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config)
        for r, i in enumerate(chunk):
            replies[i] = tokenizer.decode(out[r, width:], skip_special_tokens=True).strip()
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    return replies
