"""Run evaluation tasks on a model directory: the evaluation core's public entry point.

    run_tasks(model_dir, tasks, data_dirs, settings, reporter) -> list[TaskResult]

- `model_dir`: a materialised model snapshot (config.json, weights, tokenizer).
- `tasks`: `Task`s (built-in: `tasks.builtin_tasks()`, or a user's YAML: `tasks.load_tasks(path)`).
- `data_dirs`: for each task name, a `DatasetSource`: the directory its data files are in, and the
  dataset repo id and commit sha they came from (recorded in the result, never read from the network).
- `settings`: `RunSettings`; `settings.scoring_key()` is the part that can change a score, the
  part results must be stored under (with model sha, task, task version, dataset sha, harness version).
- `reporter`: anything with `log(message)` and `progress(step, total, **metrics)`
  (`commons.ml.events.Reporter` fits), or None.

Each `TaskResult` has the task's name, version and type, its `Metric`s (name, value, stderr, n,
95% interval, how the interval was computed, which direction is better), the same per group
(e.g. CrowS-Pairs per bias type), the dataset (repo, sha, sha256 of each data file), the harness
version and the settings. `TaskResult.to_json()` / `from_json()` round-trip.

No hub, no database, no network: the job system materialises model and dataset snapshots and
calls this in a child process. The CLI does the same for directories on disk:

    python -m commons.ml.eval.harness --model MODEL_DIR \\
        --task hellaswag=DATA_DIR --task path/to/my-task.yaml=DATA_DIR --limit 200 --out results.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from commons.ml.eval import scoring
from commons.ml.eval.tasks import Item, Task, TaskError, build_items, builtin_tasks, load_docs, load_tasks, subsample

__all__ = [
    "HARNESS_VERSION",
    "DatasetRef",
    "DatasetSource",
    "EvalReporter",
    "Metric",
    "RunSettings",
    "TaskResult",
    "load_model",
    "main",
    "run_task",
    "run_tasks",
]

HARNESS_VERSION = "1"
"""Bumped whenever a change in this package can change a score for the same task version and data."""

Better = Literal["higher", "lower"]


class EvalReporter(Protocol):
    """Where progress goes (`commons.ml.events.Reporter` is one)."""

    def log(self, message: str, level: str = "info") -> None: ...

    def progress(self, step: int, total: int, **metrics: float | int | None) -> None: ...


@dataclass(frozen=True)
class RunSettings:
    """How to run. `scoring_key()` names the fields that can change a score; the rest only change speed."""

    limit: int | None = None
    """At most this many rows per task (None: all)."""
    sample: str = "first"
    """Which rows when limited: `first` (lm-eval's --limit) or `spread` (evenly spaced over the file)."""
    batch_tokens: int = 2048
    """Tokens per forward pass."""
    reuse_context: bool = True
    """Compute each multiple-choice context once and score the choices from its KV cache."""
    max_length: int | None = None
    """Context length (default: the model's; perplexity tasks may set their own window)."""
    generation_batch_size: int = 16
    max_new_tokens: int | None = None
    """Override the generation tasks' max_new_tokens."""
    bootstrap_iters: int = 1000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    num_threads: int | None = None
    keep_samples: bool = False
    """Include per-row outputs (log-likelihoods, replies, judgements) in the results."""

    SCORING_FIELDS = ("limit", "sample", "max_length", "max_new_tokens", "bootstrap_iters", "seed", "dtype")

    def scoring_key(self) -> dict[str, Any]:
        """The settings a stored result is keyed by: those that can change a value or its interval."""
        return {name: getattr(self, name) for name in self.SCORING_FIELDS}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DatasetSource:
    """Where a task's data is on disk, and which dataset repo commit it is."""

    path: Path
    repo: str | None = None
    """`namespace/name` of the dataset repo in the hub (None for a plain directory)."""
    sha: str | None = None
    """The dataset repo's commit sha."""


@dataclass(frozen=True)
class DatasetRef:
    """The data a result was computed on."""

    repo: str | None
    sha: str | None
    files: Mapping[str, str] = field(default_factory=dict)
    """sha256 of each data file the task read."""


@dataclass(frozen=True)
class Metric:
    """One score with its uncertainty (lm-eval's stderr for means; bootstrap for aggregates)."""

    name: str
    value: float
    stderr: float | None
    n: int
    """Rows the value is computed over."""
    ci95: tuple[float, float] | None = None
    method: str = "mean"
    """`mean` (stderr = sample std / sqrt(n), interval value +- 1.96 stderr) or `bootstrap` (percentile)."""
    better: Better | None = None
    """Which direction is better; None when the ideal is a point (`ideal`)."""
    ideal: float | None = None
    """For bias scores: the value of no bias (0.5 for pct_stereotype, 0 for bias scores and gaps)."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metric:
        ci = data.get("ci95")
        return cls(name=data["name"], value=float(data["value"]), stderr=data.get("stderr"), n=int(data["n"]),
                   ci95=(float(ci[0]), float(ci[1])) if ci else None, method=data.get("method", "mean"),
                   better=data.get("better"), ideal=data.get("ideal"))


@dataclass(frozen=True)
class TaskResult:
    """One task's scores on one model."""

    task: str
    task_version: str
    task_type: str
    metrics: tuple[Metric, ...]
    dataset: DatasetRef
    settings: RunSettings
    harness_version: str = HARNESS_VERSION
    groups: Mapping[str, Mapping[str, tuple[Metric, ...]]] = field(default_factory=dict)
    """column -> value -> metrics on the rows with that value (e.g. bias_type -> gender -> ...)."""
    n: int = 0
    """Rows scored."""
    n_total: int = 0
    """Rows the task has (n < n_total under a limit)."""
    seconds: float = 0.0
    samples: tuple[Mapping[str, Any], ...] | None = None
    """Per-row outputs when `settings.keep_samples`."""

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{self.task}: no metric {name!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task, "task_version": self.task_version, "task_type": self.task_type,
            "metrics": [m.to_json() for m in self.metrics],
            "dataset": {"repo": self.dataset.repo, "sha": self.dataset.sha, "files": dict(self.dataset.files)},
            "settings": self.settings.to_json(), "harness_version": self.harness_version,
            "groups": {col: {val: [m.to_json() for m in ms] for val, ms in by.items()}
                       for col, by in self.groups.items()},
            "n": self.n, "n_total": self.n_total, "seconds": self.seconds,
            "samples": list(self.samples) if self.samples is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        ds = data["dataset"]
        return cls(
            task=data["task"], task_version=str(data["task_version"]), task_type=data["task_type"],
            metrics=tuple(Metric.from_json(m) for m in data["metrics"]),
            dataset=DatasetRef(ds.get("repo"), ds.get("sha"), dict(ds.get("files") or {})),
            settings=RunSettings.from_json(data.get("settings") or {}),
            harness_version=str(data.get("harness_version", HARNESS_VERSION)),
            groups={col: {val: tuple(Metric.from_json(m) for m in ms) for val, ms in by.items()}
                    for col, by in (data.get("groups") or {}).items()},
            n=int(data.get("n", 0)), n_total=int(data.get("n_total", 0)), seconds=float(data.get("seconds", 0.0)),
            samples=tuple(data["samples"]) if data.get("samples") is not None else None,
        )


# Direction of each metric (lm-eval's higher_is_better where it has one); a task's YAML may override
# it (`better: {refusal_rate: lower}` for over-refusal on safe prompts).
_BETTER: dict[str, Better] = {
    "acc": "higher", "acc_norm": "higher", "mc1": "higher", "mc2": "higher", "acc_ambig": "higher",
    "acc_disambig": "higher", "acc_pro": "higher", "acc_anti": "higher", "refusal_rate": "higher",
    "keyword_refusal_rate": "higher", "likelihood_diff": "lower", "word_perplexity": "lower",
    "byte_perplexity": "lower", "bits_per_byte": "lower", "token_perplexity": "lower",
}
_IDEAL: dict[str, float] = {"pct_stereotype": 0.5, "bias_ambig": 0.0, "bias_disambig": 0.0, "gap": 0.0}


def _metric(task: Task, name: str, estimate: scoring.Estimate, n: int) -> Metric:
    better = cast(Better | None, task.better.get(name, _BETTER.get(name))) if name not in _IDEAL else None
    return Metric(name, estimate.value, estimate.stderr, n, estimate.ci95, estimate.method,
                  better, _IDEAL.get(name))


class _NullReporter:
    def log(self, message: str, level: str = "info") -> None:
        pass

    def progress(self, step: int, total: int, **metrics: float | int | None) -> None:
        pass


def load_model(model_dir: Path, settings: RunSettings) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[settings.dtype]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = model.to(settings.device).eval()  # type: ignore[arg-type]
    return model, tokenizer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _estimates(task: Task, items: Sequence[Item], outputs: Sequence[Any], settings: RunSettings,
               tokenizer: Any) -> tuple[dict[str, scoring.Estimate], dict[str, list[float]]]:
    """Every metric of the task over `items` (outputs aligned with them), and the per-row values of the means."""
    names = task.metric_names
    per_item: dict[str, list[float]] = {}
    aggregate: Callable[[Sequence[int]], Mapping[str, float]] | None = None
    if task.type in ("multiple_choice", "loglikelihood_pairs"):
        lls: list[list[float]] = [[s.logprob for s in out] for out in outputs]
        for name in names:
            if name in ("acc", "mc1"):
                per_item[name] = [scoring.acc(ll, it.targets) for ll, it in zip(lls, items, strict=True)]
            elif name == "acc_norm":
                per_item[name] = [scoring.acc_norm(ll, it.choices, it.targets)
                                  for ll, it in zip(lls, items, strict=True)]
            elif name == "mc2":
                per_item[name] = [scoring.mc2(ll, it.labels) for ll, it in zip(lls, items, strict=True)]
            elif name == "pct_stereotype":
                per_item[name] = [scoring.pct_stereotype(ll[0], ll[1]) for ll in lls]
            elif name == "likelihood_diff":
                per_item[name] = [scoring.likelihood_diff(ll[0], ll[1]) for ll in lls]
        if "bbq" in names:
            rows = []
            for ll, it in zip(lls, items, strict=True):
                pick = scoring.argmax(ll)
                rows.append(scoring.BBQRow(pick in it.targets, pick in it.doc["biased"], pick in it.doc["unknown"],
                                           it.doc["context_condition"] == "disambig", str(it.doc["category"])))
            aggregate = lambda idx: scoring.bbq_scores([rows[i] for i in idx])  # noqa: E731
        if "winobias" in names:
            correct = [bool(scoring.acc(ll, it.targets)) for ll, it in zip(lls, items, strict=True)]
            conditions = [str(it.doc["condition"]) for it in items]
            aggregate = lambda idx: scoring.winobias_scores([correct[i] for i in idx],  # noqa: E731
                                                            [conditions[i] for i in idx])
    elif task.type == "perplexity":
        lls_doc = [float(o) for o in outputs]
        words = [scoring.count_words(it.count_text) for it in items]
        nbytes = [len(it.count_text.encode("utf-8")) for it in items]
        ntok = [len(tokenizer(it.text)["input_ids"]) for it in items] if "token_perplexity" in names else []

        def aggregate_ppl(idx: Sequence[int]) -> dict[str, float]:
            ll = [lls_doc[i] for i in idx]
            out = {}
            if "word_perplexity" in names:
                out["word_perplexity"] = scoring.word_perplexity(ll, [words[i] for i in idx])
            if "byte_perplexity" in names:
                out["byte_perplexity"] = scoring.byte_perplexity(ll, [nbytes[i] for i in idx])
            if "bits_per_byte" in names:
                out["bits_per_byte"] = scoring.bits_per_byte(ll, [nbytes[i] for i in idx])
            if ntok:
                out["token_perplexity"] = scoring.word_perplexity(ll, [ntok[i] for i in idx])
            return out

        aggregate = aggregate_ppl
    elif task.type == "generation_refusal":
        per_item["refusal_rate"] = [1.0 if o["refusal"] else 0.0 for o in outputs]
        per_item["keyword_refusal_rate"] = [1.0 if o["keyword_refusal"] else 0.0 for o in outputs]
    estimates = {name: scoring.mean_estimate(values) for name, values in per_item.items()}
    if aggregate is not None and items:
        estimates.update(scoring.bootstrap(aggregate, len(items), settings.bootstrap_iters, settings.seed))
    return estimates, per_item


def _model_outputs(task: Task, items: Sequence[Item], model: Any, tokenizer: Any, settings: RunSettings,
                   reporter: EvalReporter) -> list[Any]:
    """What the model says about each item: per-choice Scored lists, document log-likelihoods, or replies."""
    from commons.ml.eval import loglik

    def progress(done: int, total: int) -> None:
        reporter.progress(done, total)

    if task.type in ("multiple_choice", "loglikelihood_pairs"):
        if task.type == "loglikelihood_pairs":
            requests = [("", choice) for it in items for choice in it.choices]
        else:
            requests = [req for it in items for req in it.requests(task.target_delimiter)]
        scored = loglik.loglikelihood(model, tokenizer, requests, max_length=settings.max_length,
                                      batch_tokens=settings.batch_tokens, reuse_context=settings.reuse_context,
                                      progress=progress)
        out: list[Any] = []
        offset = 0
        for it in items:
            out.append(scored[offset : offset + len(it.choices)])
            offset += len(it.choices)
        return out
    if task.type == "perplexity":
        return list(loglik.loglikelihood_rolling(model, tokenizer, [it.text for it in items],
                                                 max_length=task.max_length or settings.max_length,
                                                 batch_tokens=settings.batch_tokens, progress=progress))
    if task.type == "generation_refusal":
        from commons.ml.eval.generate import generate
        from commons.ml.eval.refusal import classify_refusal, keyword_refusal

        replies = generate(model, tokenizer, [it.text for it in items],
                           max_new_tokens=settings.max_new_tokens or task.max_new_tokens, chat=task.chat,
                           batch_size=settings.generation_batch_size, progress=progress)
        return [{"reply": r, "refusal": classify_refusal(r), "keyword_refusal": keyword_refusal(r)} for r in replies]
    raise TaskError(f"{task.name}: unknown type {task.type}")


def run_task(task: Task, data: DatasetSource, model: Any, tokenizer: Any, settings: RunSettings,
             reporter: EvalReporter | None = None) -> TaskResult:
    """Evaluate one task with an already loaded model."""
    reporter = reporter or _NullReporter()
    started = time.perf_counter()
    docs = load_docs(task, data.path)
    chosen = subsample(len(docs), settings.limit, settings.sample)
    items = build_items(task, [docs[i] for i in chosen])
    outputs = _model_outputs(task, items, model, tokenizer, settings, reporter)
    estimates, per_item = _estimates(task, items, outputs, settings, tokenizer)
    groups: dict[str, dict[str, tuple[Metric, ...]]] = {}
    for column in task.group_by:
        groups[column] = {}
        for value in sorted({it.groups[column] for it in items}):
            idx = [i for i, it in enumerate(items) if it.groups[column] == value]
            sub, _ = _estimates(task, [items[i] for i in idx], [outputs[i] for i in idx], settings, tokenizer)
            groups[column][value] = tuple(_metric(task, k, e, len(idx)) for k, e in sub.items())
    return TaskResult(
        task=task.name,
        task_version=task.version,
        task_type=task.type,
        metrics=tuple(_metric(task, k, e, len(items)) for k, e in estimates.items()),
        dataset=DatasetRef(data.repo, data.sha, {name: _sha256(data.path / name) for name in task.data_files}),
        settings=settings,
        groups=groups,
        n=len(items),
        n_total=len(docs),
        seconds=round(time.perf_counter() - started, 3),
        samples=tuple(_samples(task, items, outputs, per_item, chosen)) if settings.keep_samples else None,
    )


def _samples(task: Task, items: Sequence[Item], outputs: Sequence[Any],
             per_item: Mapping[str, Sequence[float]], rows_used: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for i, (it, out) in enumerate(zip(items, outputs, strict=True)):
        # row: the row's position in the task's data (after processing and filtering)
        row: dict[str, Any] = {"row": rows_used[it.index], **{k: v[i] for k, v in per_item.items()}}
        if task.type in ("multiple_choice", "loglikelihood_pairs"):
            row["logprobs"] = [s.logprob for s in out]
            row["targets"] = list(it.targets)
        elif task.type == "perplexity":
            row["logprob"] = out
        else:
            row.update(prompt=it.text, **out)
        rows.append(row)
    return rows


def run_tasks(model_dir: Path, tasks: Sequence[Task], data_dirs: Mapping[str, DatasetSource],
              settings: RunSettings = RunSettings(), reporter: EvalReporter | None = None) -> list[TaskResult]:
    """Run `tasks` on the model in `model_dir`, each on the data `data_dirs[task.name]` names."""
    reporter = reporter or _NullReporter()
    missing = [t.name for t in tasks if t.name not in data_dirs]
    if missing:
        raise TaskError(f"no data directory for task(s) {', '.join(missing)}")
    model, tokenizer = load_model(model_dir, settings)
    results = []
    for task in tasks:
        reporter.log(f"{task.name}: starting")
        result = run_task(task, data_dirs[task.name], model, tokenizer, settings, reporter)
        reporter.log(f"{task.name}: " + json.dumps({m.name: round(m.value, 4) for m in result.metrics}))
        results.append(result)
    return results


def _resolve(spec: str) -> list[tuple[Task, Path]]:
    """`NAME=DATA_DIR` or `TASK.yaml=DATA_DIR` (or `TASK.yaml` alone: data next to it)."""
    target, _, data = spec.partition("=")
    path = Path(target)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return [(t, Path(data) if data else path.parent) for t in load_tasks(path)]
    known = builtin_tasks()
    if target not in known:
        raise TaskError(f"no task {target!r}: give a task YAML or one of {', '.join(sorted(known))}")
    if not data:
        raise TaskError(f"{target}: give its data directory as {target}=DIR")
    return [(known[target], Path(data))]


class _StderrReporter:
    def log(self, message: str, level: str = "info") -> None:
        print(message, file=sys.stderr, flush=True)

    def progress(self, step: int, total: int, **metrics: float | int | None) -> None:
        if step == total or step % max(1, total // 10) == 0:
            print(f"  {step}/{total}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commons.ml.eval.harness",
                                     description="Score a model directory on evaluation tasks.")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--task", action="append", required=True, help="NAME=DATA_DIR or TASK.yaml[=DATA_DIR]")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--sample", choices=("first", "spread"), default="first")
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--no-reuse", action="store_true", help="do not reuse multiple-choice contexts")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--samples", action="store_true", help="keep per-row outputs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    settings = RunSettings(limit=args.limit, sample=args.sample, batch_tokens=args.batch_tokens,
                           reuse_context=not args.no_reuse, max_new_tokens=args.max_new_tokens,
                           num_threads=args.threads, keep_samples=args.samples)
    try:
        pairs = [pair for spec in args.task for pair in _resolve(spec)]
        results = run_tasks(args.model, [t for t, _ in pairs], {t.name: DatasetSource(d) for t, d in pairs},
                            settings, _StderrReporter())
    except TaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps([r.to_json() for r in results], indent=2)
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
