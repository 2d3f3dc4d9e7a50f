"""Evaluation results -> the model card's `model-index` (what huggingface_hub's `ModelCard` parses).

Input is the task records of an evaluation job's `results.json` (see `commons.ml.eval_job`). One
`model-index` result per task: the dataset repo as `dataset.type` with its commit as
`dataset.revision`, every metric (headline first) with its stderr, 95% interval, item counts, task
and harness versions and settings hash in `args`, so a reader can tell whether two scores compare.

`card_with_results` merges into an existing card: results for other (task, dataset) pairs and every
other front-matter key are kept; the card's body is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from commons.evals.report import pretty_task

__all__ = ["card_with_results", "model_index"]

_FRONT = re.compile(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.DOTALL)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _metric_entry(record: Mapping[str, Any], metric: Mapping[str, Any]) -> dict[str, Any]:
    ci = metric.get("ci95")
    args: dict[str, Any] = {
        "n": metric.get("n", record.get("n")), "n_total": record.get("n_total"),
        "stderr": _round(metric.get("stderr")), "ci95": [_round(v) for v in ci] if ci else None,
        "task_version": str(record.get("task_version")), "harness_version": str(record.get("harness_version")),
        "settings_hash": record.get("settings_hash"), "num_fewshot": 0,
    }
    return {"type": metric["name"], "value": _round(float(metric["value"])), "name": metric["name"],
            "args": args, "verified": False}


def model_index(records: Sequence[Mapping[str, Any]], model_name: str) -> list[dict[str, Any]]:
    """The `model-index` list for a card: one entry named `model_name` with one result per task."""
    results = []
    for record in records:
        head = record.get("headline")
        metrics = sorted(record["metrics"], key=lambda m: (m["name"] != head, m["name"]))
        results.append({
            "task": {"type": "text-generation", "name": record["task"]},
            "dataset": {"name": pretty_task(record["task"]), "type": record["dataset"]["repo"],
                        "revision": record["dataset"]["sha"]},
            "metrics": [_metric_entry(record, m) for m in metrics],
        })
    return [{"name": model_name, "results": results}]


def _result_key(result: Any) -> tuple[str, str] | None:
    if not isinstance(result, Mapping):
        return None
    task, dataset = result.get("task"), result.get("dataset")
    return (str(task.get("name")) if isinstance(task, Mapping) else "",
            str(dataset.get("type")) if isinstance(dataset, Mapping) else "")


def merge_index(existing: Any, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`new`'s results replace those of the same (task name, dataset) in `existing`; the rest stay."""
    if not isinstance(existing, list) or not existing or not isinstance(existing[0], Mapping):
        return new
    first = dict(existing[0])
    fresh = {_result_key(r): r for r in new[0]["results"]}
    kept = [r for r in (first.get("results") or []) if _result_key(r) not in fresh]
    first["results"] = kept + new[0]["results"]
    first.setdefault("name", new[0]["name"])
    return [first, *existing[1:]]


def card_with_results(readme: str | None, index: list[dict[str, Any]]) -> str:
    """The README with `index` merged into its front matter's `model-index` (other keys and the body kept)."""
    text = readme or ""
    match = _FRONT.match(text)
    meta: dict[str, Any] = {}
    body = text
    if match:
        loaded = yaml.safe_load(match.group(1))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError("the card's front matter is not a YAML mapping")
        meta = loaded or {}
        body = text[match.end():]
    meta["model-index"] = merge_index(meta.get("model-index"), index)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n{body}"
