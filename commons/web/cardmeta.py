"""The metadata panel of a card: what its YAML front matter says, in the shape the page shows (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_PARAM_KEYS = ("parameters", "params", "num_parameters", "model_size", "parameter_count")


@dataclass(frozen=True)
class EvalResult:
    task: str
    dataset: str
    metric: str
    value: str


@dataclass(frozen=True)
class CardFacts:
    licenses: list[str] = field(default_factory=list)
    license_name: str | None = None
    base_models: list[str] = field(default_factory=list)
    base_relation: str | None = None
    datasets: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    library: str | None = None
    pipeline: str | None = None
    tags: list[str] = field(default_factory=list)
    parameters: str | None = None
    task_categories: list[str] = field(default_factory=list)
    size_categories: list[str] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)
    gated_prompt: str | None = None
    gated_fields: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.licenses or self.base_models or self.datasets or self.languages or self.library
                    or self.pipeline or self.parameters or self.evals or self.task_categories or self.tags)


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") and not isinstance(value, dict | list) else None


def human_count(n: float) -> str:
    """135000000 → "135M", 7241732096 → "7.24B"."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            value = n / size
            text = f"{value:.3g}" if value < 100 else f"{value:.0f}"
            return f"{text}{unit}"
    return f"{n:g}"


def _parameters(meta: dict[str, Any]) -> str | None:
    for key in _PARAM_KEYS:
        value = meta.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return human_count(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _as(value: Any, kind: type[Any]) -> Any:
    """`value` if it is a `kind` (dict or list), else an empty one."""
    return value if isinstance(value, kind) else kind()


def _evals(meta: dict[str, Any]) -> list[EvalResult]:
    out: list[EvalResult] = []
    index = meta.get("model-index")
    if not isinstance(index, list):
        return out
    for model in index:
        results = _as(model.get("results") if isinstance(model, dict) else None, list)
        for result in results:
            if not isinstance(result, dict):
                continue
            task = _as(result.get("task"), dict)
            dataset = _as(result.get("dataset"), dict)
            for metric in _as(result.get("metrics"), list):
                if not isinstance(metric, dict) or "value" not in metric:
                    continue
                out.append(EvalResult(
                    task=str(task.get("name") or task.get("type") or ""),
                    dataset=str(dataset.get("name") or dataset.get("type") or ""),
                    metric=str(metric.get("name") or metric.get("type") or ""),
                    value=_number(metric["value"]),
                ))
    return out[:100]


def card_facts(meta: dict[str, Any] | None) -> CardFacts:
    if not meta:
        return CardFacts()
    fields = meta.get("extra_gated_fields")
    return CardFacts(
        licenses=_list(meta.get("license")),
        license_name=_text(meta.get("license_name")),
        base_models=_list(meta.get("base_model")),
        base_relation=_text(meta.get("base_model_relation")),
        datasets=_list(meta.get("datasets")),
        languages=_list(meta.get("language")),
        library=_text(meta.get("library_name")),
        pipeline=_text(meta.get("pipeline_tag")),
        tags=_list(meta.get("tags")),
        parameters=_parameters(meta),
        task_categories=_list(meta.get("task_categories")),
        size_categories=_list(meta.get("size_categories")),
        evals=_evals(meta),
        gated_prompt=_text(meta.get("extra_gated_prompt")),
        gated_fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
    )
