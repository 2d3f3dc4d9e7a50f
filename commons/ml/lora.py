"""LoRA fine-tuning with peft: wrap the base model, train the adapter, save it.

LoRA freezes each targeted weight W and learns a low-rank update beside it:

        x ──► W (frozen, d_out x d_in) ───────────────┐
        │                                             (+) ──► h = W x + (alpha / r) · B A x
        └──► dropout ──► A (r x d_in) ──► B (d_out x r)┘

A starts random and B at zero, so training starts exactly at the base model. Only A and B (a
fraction of a percent of the parameters) get gradients and AdamW state.

The loop is deliberately plain (no Trainer): micro-batches are accumulated into optimiser steps,
the learning rate follows `lr_at`, and every step reports loss, tokens/s and an ETA. With the same
seed, versions and thread count on CPU it is bit-for-bit repeatable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from commons.ml.data import Example, collate, shuffled_batches
from commons.ml.specs import LoraRecipe


@dataclass
class TrainLog:
    """What happened during training: per-step losses and throughput."""

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    tokens: int = 0
    """Non-padding tokens that went through forward and backward."""
    seconds: float = 0.0
    step_tokens: list[int] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def steady_tokens_per_s(self) -> float:
        """Throughput without the first step (allocator and kernel warm-up)."""
        if len(self.step_seconds) < 2:
            return self.tokens_per_s
        return sum(self.step_tokens[1:]) / sum(self.step_seconds[1:])


def seed_everything(seed: int, num_threads: int | None) -> None:
    """Same seed, same thread count, deterministic kernels: the preconditions for a bit-identical rerun."""
    torch.manual_seed(seed)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    # warn_only: a few kernels (mostly CUDA) have no deterministic variant; they warn instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN (a debugging aid against reading
    # uninitialised memory); that costs a memset per allocation and adds nothing to repeatability.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def wrap_lora(model: Any, recipe: LoraRecipe) -> Any:
    """The base model with LoRA adapters on `recipe.target_modules`; only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=recipe.rank,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=list(recipe.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def total_steps(n_examples: int, recipe: LoraRecipe) -> int:
    if recipe.max_steps is not None:
        return recipe.max_steps
    micro_per_epoch = math.ceil(n_examples / recipe.batch_size)
    return max(1, math.ceil(recipe.epochs * micro_per_epoch / recipe.grad_accumulation))


def lr_at(step: int, total: int, recipe: LoraRecipe) -> float:
    """Learning rate for optimiser step `step` (0-based)."""
    peak = recipe.learning_rate
    # 1) linear warm-up from ~0 to the peak
    if step < recipe.warmup_steps:
        return peak * (step + 1) / (recipe.warmup_steps + 1)
    if recipe.schedule == "constant":
        return peak
    # 2) then decay towards 0 over the remaining steps
    progress = (step - recipe.warmup_steps) / max(1, total - recipe.warmup_steps)
    if recipe.schedule == "linear":
        return peak * (1.0 - progress)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def mean_loss(model: Any, examples: list[Example], batch_size: int, pad: int, device: str) -> float:
    """Token-weighted mean cross-entropy over `examples` (dropout off)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[start:start + batch_size], pad).items()}
        n = int((batch["labels"][:, 1:] != -100).sum())
        # The model's loss is the mean over target tokens; weight it back into a sum.
        total += float(model(**batch).loss) * n
        count += n
    model.train(was_training)
    return total / max(1, count)


ProgressFn = Callable[[int, int, float, float, float], None]  # step, total, loss, lr, tokens/s


def train(model: Any, examples: list[Example], recipe: LoraRecipe, pad: int, device: str,
          on_step: ProgressFn | None = None) -> TrainLog:
    """Run `total_steps` optimiser steps of AdamW on the trainable (LoRA) parameters."""
    steps = total_steps(len(examples), recipe)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    generator = torch.Generator().manual_seed(recipe.seed)
    batches = shuffled_batches(examples, recipe.batch_size, generator)
    log = TrainLog()
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        lr = lr_at(step, steps, recipe)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # 1) forward + backward over grad_accumulation micro-batches, gradients summed
        step_loss, step_tokens, step_started = 0.0, 0, time.perf_counter()
        for _ in range(recipe.grad_accumulation):
            batch = {k: v.to(device) for k, v in collate(next(batches), pad).items()}
            loss = model(**batch).loss / recipe.grad_accumulation  # (B, T) -> scalar mean over targets
            loss.backward()
            step_loss += float(loss.detach())
            step_tokens += int(batch["attention_mask"].sum())
        # 2) clip, update, clear
        if recipe.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # 3) book-keeping
        log.steps = step + 1
        log.tokens += step_tokens
        log.step_tokens.append(step_tokens)
        log.step_seconds.append(time.perf_counter() - step_started)
        log.losses.append(step_loss)
        log.learning_rates.append(lr)
        log.seconds = time.perf_counter() - started
        if on_step is not None:
            on_step(step + 1, steps, step_loss, lr, log.tokens_per_s)
    model.eval()
    return log


def save_adapter(model: Any, out_dir: Any, base_repo: str, base_revision: str) -> None:
    """adapter_config.json + adapter_model.safetensors, naming the base by repo id and commit (not a local path)."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = base_repo
        config.revision = base_revision
        config.inference_mode = True
        # peft keeps target modules in a set, whose order varies between runs: write them sorted.
        if isinstance(config.target_modules, set | frozenset):
            config.target_modules = sorted(config.target_modules)
    # save_embedding_layers=False: the embeddings are frozen, and peft would otherwise look the base up online.
    model.save_pretrained(str(out_dir), safe_serialization=True, save_embedding_layers=False)
    # peft writes a stub model card next to the adapter; the job writes the real one.
    (out_dir / "README.md").unlink(missing_ok=True)


def save_merged(model: Any, out_dir: Any) -> None:
    """The base weights with the update folded in, as a plain transformers model."""
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out_dir), safe_serialization=True)
