"""A fine-tune job from start to finish: check -> load -> measure -> train -> measure -> save.

    workdir/inputs/base/      the base model at its commit (materialised by the caller)
    workdir/inputs/dataset/   the dataset at its commit
    workdir/output/           what gets published: adapter, card, loss plot, provenance.json
    workdir/cache/            scratch (the datasets cache)

Every check that can fail on the inputs runs before the weights are loaded; nothing is written
to `output/` before training has finished.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commons.ml import card, checks, data, lora
from commons.ml.checks import InputError
from commons.ml.events import Reporter
from commons.ml.provenance import hardware, write_provenance
from commons.ml.specs import FinetuneSpec

# Tokenizer files copied from the base next to the adapter, so the output repo is usable on its own.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "chat_template.json", "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt",
                   "added_tokens.json", "generation_config.json")


def pick_device(wanted: str) -> str:
    import torch

    if wanted == "cuda" and not torch.cuda.is_available():
        raise InputError("the recipe asks for device 'cuda' but no CUDA device is available")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def run_finetune(spec: FinetuneSpec, workdir: Path, reporter: Reporter, job: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Train and write `workdir/output/`; returns the metrics. Raises InputError for unusable inputs."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    recipe = spec.recipe
    base_dir, data_dir = workdir / "inputs" / "base", workdir / "inputs" / "dataset"
    out = workdir / "output"

    # 1) check everything that does not need the weights
    reporter.phase("check")
    lora.seed_everything(recipe.seed, recipe.num_threads)
    device = pick_device(recipe.device)
    try:
        config = AutoConfig.from_pretrained(base_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"base model {spec.base.repo_id} has no usable config.json: {exc}") from None
    checks.check_causal_lm(config, spec.base.repo_id)
    checks.check_sequence_length(config, recipe, spec.base.repo_id)
    weights = checks.read_weights_info(base_dir, spec.base.repo_id)
    trainable = checks.lora_parameters(weights, recipe, spec.base.repo_id)
    rows = data.load_splits(data_dir, recipe, spec.dataset.repo_id, workdir / "cache")
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
    except (OSError, ValueError) as exc:
        raise InputError(f"base model {spec.base.repo_id} has no usable tokenizer: {exc}") from None
    train_examples = data.encode(rows[recipe.train_split], tokenizer, recipe)
    if not train_examples:
        raise InputError(f"no example of split {recipe.train_split!r} has a token left to learn after truncation")
    eval_examples = (data.encode(rows[recipe.eval_split], tokenizer, recipe)[: recipe.max_eval_examples]
                     if recipe.eval_split else [])
    estimate = checks.estimate_memory(config, weights, trainable, recipe)
    available = checks.available_memory(device)
    reporter.log(f"memory: about {estimate.total / checks.GIB:.2f} GiB needed ({estimate.describe()}), "
                 f"{available / checks.GIB:.1f} GiB available on {device}")
    checks.check_memory(estimate, available, device)

    # 2) load the base in float32 and wrap it with LoRA adapters
    reporter.phase("load")
    reporter.log(f"loading {spec.base.label} ({weights.n_params / 1e6:.1f} M parameters) on {device}")
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, use_safetensors=True)
    model = model.to(device)  # type: ignore[arg-type]
    torch.manual_seed(recipe.seed)  # the adapters' initialisation does not depend on what loading consumed
    model = lora.wrap_lora(model, recipe)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    pad = data.pad_id(tokenizer)
    probe = train_examples[: recipe.max_eval_examples]
    batch = recipe.batch_size
    train_before = lora.mean_loss(model, probe, batch, pad, device)
    eval_before = lora.mean_loss(model, eval_examples, batch, pad, device) if eval_examples else None
    reporter.metric("train_loss_before", train_before, 0)
    if eval_before is not None:
        reporter.metric("eval_loss_before", eval_before, 0)

    # 3) train
    reporter.phase("train")
    steps = lora.total_steps(len(train_examples), recipe)
    reporter.log(f"training {n_trainable:,} parameters for {steps} steps on {len(train_examples)} examples")

    def on_step(step: int, total: int, loss: float, lr: float, tokens_per_s: float) -> None:
        elapsed = time.perf_counter() - train_started
        reporter.progress(step, total, loss=loss, lr=lr, tokens_per_s=round(tokens_per_s, 2),
                          eta_s=round(elapsed / step * (total - step), 1), epoch=round(step * recipe.batch_size
                          * recipe.grad_accumulation / len(train_examples), 3))

    train_started = time.perf_counter()
    log = lora.train(model, train_examples, recipe, pad, device, on_step)

    # 4) measure again, on the same examples
    reporter.phase("evaluate")
    train_after = lora.mean_loss(model, probe, batch, pad, device)
    eval_after = lora.mean_loss(model, eval_examples, batch, pad, device) if eval_examples else None
    reporter.metric("train_loss_after", train_after, steps)
    if eval_after is not None:
        reporter.metric("eval_loss_after", eval_after, steps)

    # 5) write the outputs: adapter (+ merged model), tokenizer, plot, card, provenance
    reporter.phase("save")
    out.mkdir(parents=True, exist_ok=True)
    adapter_dir = out / "adapter" if recipe.merge else out
    adapter_dir.mkdir(exist_ok=True)
    lora.save_adapter(model, adapter_dir, spec.base.repo_id, spec.base.revision)
    if recipe.merge:
        lora.save_merged(model, out)
    for name in TOKENIZER_FILES:
        if (base_dir / name).is_file():
            shutil.copyfile(base_dir / name, out / name)
    metrics: dict[str, Any] = {
        "steps": log.steps,
        "train_examples": len(train_examples),
        "train_target_tokens": sum(e.n_target_tokens for e in train_examples),
        "train_loss_before": train_before,
        "train_loss_after": train_after,
        "final_step_loss": log.losses[-1],
        "trainable_params": n_trainable,
        "total_params": n_total,
        "trainable_percent": 100.0 * n_trainable / n_total,
        "device_type": device,
    }
    points = {"training-data loss": (train_before, train_after)}
    if eval_before is not None and eval_after is not None:
        metrics |= {"eval_loss_before": eval_before, "eval_loss_after": eval_after}
        points["eval loss"] = (eval_before, eval_after)
    card.plot_losses(log.losses, out / card.PLOT, points)
    (out / "README.md").write_text(card.model_card(spec, metrics, card.base_license(base_dir),
                                                   data.template_name(tokenizer, recipe), recipe.merge))
    timing = {"tokens": log.tokens, "train_seconds": round(log.seconds, 3),
              "tokens_per_s": round(log.tokens_per_s, 2), "steady_tokens_per_s": round(log.steady_tokens_per_s, 2),
              "step_seconds": [round(s, 4) for s in log.step_seconds], "memory_estimate_bytes": estimate.total,
              "peak_memory_bytes": _peak_memory(device)}
    record = write_provenance(out, {
        "tool": "commons finetune",
        "job": job or {},
        "spec": spec.to_json(),
        "inputs": {"base": {"repo_id": spec.base.repo_id, "revision": spec.base.revision},
                   "dataset": {"repo_id": spec.dataset.repo_id, "revision": spec.dataset.revision}},
        "seed": recipe.seed,
        "deterministic": device == "cpu",
        "hardware": hardware(device),
        "started_at": started_at.isoformat(),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "metrics": metrics,
        "losses": log.losses,
        "timing": timing,
    })
    return {"metrics": metrics, "timing": timing, "outputs": record["outputs"]}


def _peak_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB
