"""Run lm-evaluation-harness on *our* data files, with its own task configs, to check that we score alike.

lm-eval's task YAMLs load their data from the Hugging Face Hub. Here each config is lm-eval's own
(`load_yaml` of the shipped YAML: prompts, processing functions, metrics untouched); only
the data source is swapped for a local JSONL written from the same rows our task evaluates,
in the layout lm-eval's dataset expects. Optional: needs `pip install lm-eval` (no extras).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LMEVAL_TASKS", "available", "lmeval_docs", "run_lmeval"]

# our task -> (lm-eval task YAML, relative to lm_eval/tasks; the split that YAML evaluates)
LMEVAL_TASKS: dict[str, tuple[str, str]] = {
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation"),
    "piqa": ("piqa/piqa.yaml", "validation"),
    "truthfulqa_mc1": ("truthfulqa/truthfulqa_mc1.yaml", "validation"),
    "truthfulqa_mc2": ("truthfulqa/truthfulqa_mc2.yaml", "validation"),
    "crows_pairs": ("crows_pairs/crows_pairs_english.yaml", "test"),
    "bbq": ("bbq/bbq_multiple_choice.yaml", "test"),
    "wikitext2": ("wikitext/wikitext.yaml", "test"),
}


def available() -> bool:
    try:
        import lm_eval  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def lmeval_docs(task: str, docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Our processed rows in the layout of the dataset lm-eval's task reads."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        if task == "hellaswag":
            # Our rows hold "activity_label: ctx" already joined (ctx_b not capitalised); lm-eval rebuilds
            # the same string from activity_label + ": " + ctx_a + " " + ctx_b with ctx_b empty.
            label, _, ctx = doc["query"].partition(": ")
            out.append({"activity_label": label, "ctx_a": ctx, "ctx_b": "", "endings": doc["endings"],
                        "label": str(doc["label"])})
        elif task == "piqa":
            out.append({"goal": doc["goal"], "sol1": doc["sol1"], "sol2": doc["sol2"], "label": int(doc["label"])})
        elif task in ("truthfulqa_mc1", "truthfulqa_mc2"):
            out.append({"question": doc["question"],
                        "mc1_targets": {"choices": doc["mc1_choices"], "labels": doc["mc1_labels"]},
                        "mc2_targets": {"choices": doc["mc2_choices"], "labels": doc["mc2_labels"]}})
        elif task == "crows_pairs":
            out.append({"sent_more": doc["sent_more"], "sent_less": doc["sent_less"], "bias_type": doc["bias_type"]})
        elif task == "bbq":
            keep = ("example_id", "question_index", "question_polarity", "context_condition", "category",
                    "answer_info", "additional_metadata", "context", "question", "ans0", "ans1", "ans2", "label")
            out.append({k: doc[k] for k in keep})
        elif task == "wikitext2":
            out.append({"page": doc["page"]})
        else:
            raise KeyError(f"no lm-eval counterpart for task {task!r}")
    return out


def run_lmeval(
    model_dir: Path,
    tasks: Mapping[str, Sequence[Mapping[str, Any]]],
    workdir: Path,
    *,
    batch_size: int = 1,
    max_length: int | None = None,
    bootstrap_iters: int = 0,
    lm: Any = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate `tasks` (our task name -> lm-eval-layout rows) with lm-eval's HF backend.

    Returns, per task, lm-eval's aggregated metrics, their stderrs (lm-eval computes the closed-form
    stderr of means only when bootstrap_iters > 0) and per-row log-likelihoods (in row order; one
    number per row for perplexity tasks).
    """
    with _offline():
        return _run_lmeval(model_dir, tasks, workdir, batch_size=batch_size, max_length=max_length,
                           bootstrap_iters=bootstrap_iters, lm=lm)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """lm-eval must not reach for a hub; the caller's environment is restored afterwards."""
    saved = {var: os.environ.get(var) for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    os.environ.update({var: "1" for var in saved})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _run_lmeval(
    model_dir: Path,
    tasks: Mapping[str, Sequence[Mapping[str, Any]]],
    workdir: Path,
    *,
    batch_size: int,
    max_length: int | None,
    bootstrap_iters: int,
    lm: Any,
) -> dict[str, dict[str, Any]]:
    import lm_eval
    from lm_eval.models.huggingface import HFLM  # type: ignore[import-untyped]
    from lm_eval.tasks._yaml_loader import load_yaml  # type: ignore[import-untyped]

    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    if lm is None:
        lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=batch_size,
                  max_length=max_length)
    configs = []
    for name, rows in tasks.items():
        yaml_path, split = LMEVAL_TASKS[name]
        data_file = workdir / f"{name}.jsonl"
        data_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        config = dict(load_yaml(tasks_dir / yaml_path))
        config.pop("tag", None)
        config.pop("include", None)
        config.update(task=f"commons_{name}", dataset_path="json", dataset_name=None,
                      dataset_kwargs={"data_files": {split: str(data_file)}}, training_split=None,
                      validation_split=split if split == "validation" else None,
                      test_split=split if split == "test" else None)
        configs.append(config)
    results = lm_eval.simple_evaluate(model=lm, tasks=configs, num_fewshot=0, log_samples=True,
                                      bootstrap_iters=bootstrap_iters, random_seed=0)
    assert results is not None
    out: dict[str, dict[str, Any]] = {}
    for name in tasks:
        key = f"commons_{name}"
        samples = sorted(results["samples"][key], key=lambda s: s["doc_id"])
        values = results["results"][key]
        out[name] = {
            "metrics": {k.split(",")[0]: v for k, v in values.items() if k.endswith(",none") and "stderr" not in k},
            "stderr": {k.split(",")[0].removesuffix("_stderr"): v for k, v in values.items()
                       if k.endswith(",none") and "_stderr" in k and isinstance(v, float)},
            "logprobs": [[float(r if isinstance(r, float) else r[0]) for r in s["filtered_resps"]] for s in samples],
        }
    return out
