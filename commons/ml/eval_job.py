"""An evaluation job: score a model snapshot on tasks whose data are dataset snapshots.

    workdir/inputs/model/      the model at its commit (materialised by the worker)
    workdir/inputs/data-N/     each distinct dataset repo at its commit: a task's data, and maybe its definition
    workdir/output/            what the `eval` publisher writes back to the model repo:
        results.json                 every task's result, keyed as the results table keys them
        .eval_results/<task>.yaml    the Hub's format: the task's headline score, dataset id and revision
        .eval_results/<task>.json    the task's whole result: every metric with stderr and 95% interval,
                                     per-group scores, data file hashes, settings, harness version

A task's definition comes from the dataset repo's `commons-task.yaml` when it defines a task of that
name (so users add tasks without code), else from the built-in tasks. Everything that can fail on the
inputs (unknown task, missing data file, a model that is not a causal LM) fails before the weights load.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from commons.ml.checks import InputError
from commons.ml.events import Reporter
from commons.ml.specs import EvalSpec, EvalTask

TASK_FILE = "commons-task.yaml"
RESULTS_FILE = "results.json"
RESULTS_DIR = ".eval_results"

# The metric each built-in task is quoted by; other tasks use the first metric their YAML lists.
HEADLINE: dict[str, str] = {
    "hellaswag": "acc_norm", "piqa": "acc_norm", "truthfulqa_mc1": "mc1", "truthfulqa_mc2": "mc2",
    "crows_pairs": "pct_stereotype", "bbq": "acc", "winobias": "gap", "winobias_pairs": "pct_stereotype",
    "wikitext2": "bits_per_byte", "tinyshakespeare": "bits_per_byte", "xstest_safe": "refusal_rate",
    "xstest_unsafe": "refusal_rate",
    "advbench": "refusal_rate", "harmbench": "refusal_rate",
}


def resolve_task(task: EvalTask, data_dir: Path) -> Any:
    """The `Task` named `task.name`: from the dataset's `commons-task.yaml` if it defines it, else built in."""
    from commons.ml.eval.tasks import TaskError, builtin_tasks, load_tasks

    task_file = data_dir / TASK_FILE
    if task_file.is_file():
        try:
            defined = {t.name: t for t in load_tasks(task_file)}
        except TaskError as exc:
            raise InputError(f"{task.dataset.label}: {TASK_FILE} is not usable: {exc}") from None
        if task.name in defined:
            return defined[task.name]
    known = builtin_tasks()
    if task.name not in known:
        raise InputError(f"task {task.name!r}: {task.dataset.repo_id} defines no such task in {TASK_FILE}, and it "
                         f"is not a built-in task ({', '.join(sorted(known))})")
    return known[task.name]


def _check_model(model_dir: Path, repo_id: str) -> None:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"model {repo_id} has no usable config.json: {exc}") from None
    model_type = getattr(config, "model_type", "") or ""
    architectures = list(getattr(config, "architectures", None) or [])
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (architectures and not set(architectures) & causal):
        what = ", ".join(architectures) or model_type or "unknown architecture"
        raise InputError(f"model {repo_id} is a {what}, not a causal language model: the evaluation scores "
                         "log-likelihoods and generations of a ...ForCausalLM checkpoint")


def _device(wanted: str) -> str:
    import torch

    if wanted == "cuda" and not torch.cuda.is_available():
        raise InputError("the settings ask for device 'cuda' but no CUDA device is available")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def settings_hash(scoring_key: Mapping[str, Any]) -> str:
    """16 hex digits naming the settings a score depends on: results with equal hashes are comparable."""
    canonical = json.dumps(dict(scoring_key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def headline(task_name: str, metric_names: Sequence[str]) -> str:
    wanted = HEADLINE.get(task_name)
    return wanted if wanted is not None and wanted in metric_names else metric_names[0]


def task_record(result: Mapping[str, Any], spec: EvalSpec, task: EvalTask, evaluated_at: str,
                job_id: int | None, metric_order: Sequence[str] = ()) -> dict[str, Any]:
    """One task's entry in results.json: the harness's result (with `scoring_key` and `settings_hash`) plus
    the model and dataset commits and the headline metric, all the results table is keyed by."""
    found = [m["name"] for m in result["metrics"]]
    # The task file's order first: its first metric is its headline.
    names = [n for n in metric_order if n in found] + [n for n in found if n not in metric_order]
    return {
        **result,
        "model": {"repo": spec.model.repo_id, "sha": spec.model.revision},
        "dataset": {**result["dataset"], "repo": task.dataset.repo_id, "sha": task.dataset.revision},
        "headline": headline(result["task"], names) if names else None,
        "evaluated_at": evaluated_at,
        "job": job_id,
    }


def hub_entry(record: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """`.eval_results/<task>.yaml`: the Hub's per-benchmark list, one entry for the headline score."""
    metric = next(m for m in record["metrics"] if m["name"] == record["headline"])
    note = f"{metric['name']}, zero-shot"
    if record["n"] < record["n_total"]:
        note += f", {record['n']} of {record['n_total']} items"
    return [{
        "dataset": {"id": record["dataset"]["repo"], "task_id": record["task"], "revision": record["dataset"]["sha"]},
        "value": round(float(metric["value"]), 6),
        "date": record["evaluated_at"],
        "source": {"name": source},
        "notes": note,
    }]


def write_outputs(out: Path, records: Sequence[Mapping[str, Any]], header: Mapping[str, Any]) -> None:
    """results.json and the .eval_results files (written to a temp dir first, then renamed into place)."""
    staging = out.with_name(out.name + ".partial")
    (staging / RESULTS_DIR).mkdir(parents=True)
    source = f"Commons evaluation (job {header['job']})" if header.get("job") else "Commons evaluation"
    for record in records:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", record["task"])
        (staging / RESULTS_DIR / f"{safe}.json").write_text(json.dumps(record, indent=2) + "\n")
        (staging / RESULTS_DIR / f"{safe}.yaml").write_text(
            yaml.safe_dump(hub_entry(record, source), sort_keys=False, allow_unicode=True))
    (staging / RESULTS_FILE).write_text(json.dumps({**header, "tasks": list(records)}, indent=2) + "\n")
    staging.replace(out)


def run_eval(spec: EvalSpec, workdir: Path, reporter: Reporter, job: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Score every task and write `workdir/output/`; returns headline metrics. Raises InputError for bad inputs."""
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    model_dir = workdir / "inputs" / "model"
    out = workdir / "output"

    # 1) everything that can fail without the weights
    reporter.phase("check")
    from commons.ml.eval.tasks import TaskError

    tasks = []
    sources: dict[str, Any] = {}
    from commons.ml.eval.harness import HARNESS_VERSION, DatasetSource, RunSettings, run_tasks

    for given in spec.tasks:
        data_dir = workdir / "inputs" / spec.data_dir_name(given)
        task = resolve_task(given, data_dir)
        missing = [f for f in task.data_files if not (data_dir / f).is_file()]
        if missing:
            raise InputError(f"task {task.name}: {given.dataset.label} has no {', '.join(missing)}")
        tasks.append(task)
        sources[task.name] = DatasetSource(data_dir, given.dataset.repo_id, given.dataset.revision)
    _check_model(model_dir, spec.model.repo_id)
    s = spec.settings
    settings = RunSettings(limit=s.limit, sample=s.sample, batch_tokens=s.batch_tokens,
                           generation_batch_size=s.batch_size, max_new_tokens=s.max_new_tokens,
                           bootstrap_iters=s.bootstrap_iters, seed=s.seed, device=_device(s.device), dtype=s.dtype,
                           num_threads=s.num_threads)
    reporter.log(f"evaluating {spec.model.label} on {', '.join(t.name for t in tasks)} "
                 f"(limit {s.limit or 'none'}, {settings.device}, {s.dtype})")

    # 2) score
    reporter.phase("evaluate")
    try:
        results = run_tasks(model_dir, tasks, sources, settings, reporter)
    except TaskError as exc:
        raise InputError(str(exc)) from None

    # 3) write what the publisher commits
    reporter.phase("save")
    import torch
    import transformers

    evaluated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    job_id = (job or {}).get("id")
    records = []
    by_name = {t.name: t for t in spec.tasks}
    defined = {t.name: t for t in tasks}
    for result in results:
        raw = result.to_json()
        key = result.settings.scoring_key()
        raw["scoring_key"] = key
        raw["settings_hash"] = settings_hash(key)
        records.append(task_record(raw, spec, by_name[result.task], evaluated_at, job_id,
                                   defined[result.task].metric_names))
    header = {
        "model": {"repo": spec.model.repo_id, "sha": spec.model.revision},
        "job": job_id, "harness_version": HARNESS_VERSION, "spec": spec.to_json(),
        "started_at": started_at.isoformat(), "evaluated_at": evaluated_at,
        "environment": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "python": platform.python_version(), "device": settings.device},
    }
    write_outputs(out, records, header)
    metrics: dict[str, Any] = {}
    for record in records:
        for m in record["metrics"]:
            if m["name"] == record["headline"]:
                metrics[f"{record['task']}/{m['name']}"] = round(float(m["value"]), 6)
                reporter.metric(f"{record['task']}/{m['name']}", float(m["value"]))
    return {"metrics": metrics, "timing": {"wall_s": round(time.perf_counter() - t0, 3)}}
