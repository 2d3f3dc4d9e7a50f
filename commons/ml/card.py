"""The model card of a fine-tuned model, and its loss-curve plot.

The card says only what the job knows: the base and dataset at their commits, every
hyperparameter, and the measured losses. Nothing that varies between identical runs (wall time,
throughput) goes into it, so a reproduced run yields the same bytes; those live in provenance.json.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from commons.ml.specs import FinetuneSpec

PLOT = "loss.png"


def plot_losses(losses: list[float], path: Path, eval_points: dict[str, tuple[float, float]] | None = None) -> None:
    """Training loss per optimiser step, as a PNG (Agg backend: no display, deterministic bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, label="training loss (per step)", linewidth=1.2)
    for name, (before, after) in (eval_points or {}).items():
        ax.plot([0, len(losses)], [before, after], "o--", label=f"{name} (before / after)", linewidth=0.8)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    # No "Software"/date chunks: the same losses always give the same file.
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def base_license(base_dir: Path) -> str | None:
    """The license the base model's own card declares, if any (an adapter is a derivative of it).

    Only a first guess the child can make alone: before publishing, the server replaces it with what
    the whole lineage allows, and adds NOTICE (`commons.jobs.licensing`).
    """
    card = base_dir / "README.md"
    if not card.is_file():
        return None
    text = card.read_text("utf-8", "replace")
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
    except (yaml.YAMLError, IndexError):
        return None
    value = meta.get("license") if isinstance(meta, dict) else None
    return str(value) if value else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple | list):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`" if value is not None else "(none)"


def model_card(spec: FinetuneSpec, metrics: dict[str, Any], license_: str | None, template: str,
               merged_files: bool) -> str:
    """README.md with Hub metadata (base_model, base_model_relation, datasets) and a truthful body."""
    repo_id = spec.output_repo or "this model"
    meta: dict[str, Any] = {
        "base_model": spec.base.repo_id,
        "base_model_relation": "finetune" if merged_files else "adapter",
        "datasets": [spec.dataset.repo_id],
        "library_name": "transformers" if merged_files else "peft",
        "pipeline_tag": "text-generation",
        "tags": ["lora", "peft", "commons-finetune"],
    }
    if license_:
        meta["license"] = license_
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    r = spec.recipe
    rows = "\n".join(f"| `{k}` | {_fmt(v)} |" for k, v in asdict(r).items())
    eval_line = ""
    if "eval_loss_before" in metrics:
        eval_line = (f"| eval loss (`{r.eval_split}`, up to {r.max_eval_examples} examples) | "
                     f"{metrics['eval_loss_before']:.4f} | {metrics['eval_loss_after']:.4f} |\n")
    where = ("The repository root holds the merged model (base + update, float32); the adapter alone is in "
             "`adapter/`." if merged_files else "The repository holds the LoRA adapter only; load it on top of "
             "the base model.")
    load = (f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")' if merged_files else
            f'base = AutoModelForCausalLM.from_pretrained("{spec.base.repo_id}", revision="{spec.base.revision}")\n'
            f'model = PeftModel.from_pretrained(base, "{repo_id}")')
    train_row = (f"| training loss (`{r.train_split}`, up to {r.max_eval_examples} examples) | "
                 f"{metrics['train_loss_before']:.4f} | {metrics['train_loss_after']:.4f} |")
    return f"""---
{front}---

# {repo_id.split("/")[-1]}

A LoRA fine-tune of [{spec.base.repo_id}](/{spec.base.repo_id}) (commit `{spec.base.revision}`) on the
dataset [{spec.dataset.repo_id}](/datasets/{spec.dataset.repo_id}) (commit `{spec.dataset.revision}`),
made by a Commons fine-tune job. {where}

## Training data

Split `{r.train_split}`: {metrics["train_examples"]} examples, {metrics["train_target_tokens"]} target tokens
after truncation to {r.max_seq_len} tokens. Format: {r.prompt_format} ({template}); columns
{_fmt(list(r.columns))}{"; the loss covers the response tokens only" if r.prompt_format == "chat" else ""}.

## Hyperparameters

| setting | value |
|---|---|
{rows}

{metrics["steps"]} optimiser steps, effective batch {r.batch_size * r.grad_accumulation} examples,
{metrics["trainable_params"]:,} trainable parameters ({metrics["trainable_percent"]:.3f} % of
{metrics["total_params"]:,}), float32 on {metrics["device_type"]}.

## Results

| measured | before | after |
|---|---|---|
{train_row}
{eval_line}
Losses are mean cross-entropy per target token, in nats, on fixed examples with dropout off.

![Training loss per step]({PLOT})

## Use

```python
from transformers import AutoModelForCausalLM
from peft import PeftModel
{load}
```

## Reproduce

`provenance.json` records the exact spec, input commits, library versions, hardware, seed, wall
time and the sha256 of every file here. `commons jobs reproduce {repo_id}@<commit>` reruns it
and reports whether the outputs match.
"""
