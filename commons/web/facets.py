"""Search filters of `/models` and `/datasets`: query parameters → the Hub's tag filters, and facet counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from commons.db.models import Repo
from commons.hub.ids import RepoType
from commons.web.cardmeta import CardFacts, card_facts


@dataclass(frozen=True)
class Facet:
    param: str  # query parameter
    label: str
    prefix: str  # tag prefix in the Hub's vocabulary ("" for bare tags such as tasks and languages)
    values: Callable[[Repo, CardFacts], list[str]]

    def tag(self, value: str) -> str:
        return f"{self.prefix}{value}"


MODEL_FACETS = (
    Facet("pipeline_tag", "Task", "", lambda r, f: [r.pipeline_tag] if r.pipeline_tag else []),
    Facet("library", "Library", "", lambda r, f: [r.library_name] if r.library_name else []),
    Facet("license", "License", "license:", lambda r, f: f.licenses),
    Facet("language", "Language", "", lambda r, f: f.languages),
    Facet("base_model", "Base model", "base_model:", lambda r, f: f.base_models),
    Facet("dataset", "Trained on", "dataset:", lambda r, f: f.datasets),
)
DATASET_FACETS = (
    Facet("task_categories", "Task", "task_categories:", lambda r, f: f.task_categories),
    Facet("size_categories", "Size", "size_categories:", lambda r, f: f.size_categories),
    Facet("license", "License", "license:", lambda r, f: f.licenses),
    Facet("language", "Language", "", lambda r, f: f.languages),
)
SORTS = {
    "likes": "Most liked",
    "downloads": "Most downloaded",
    "lastModified": "Recently updated",
    "createdAt": "Newest",
}
FACET_VALUES = 12  # values listed per facet


def facets_for(kind: RepoType) -> tuple[Facet, ...]:
    return MODEL_FACETS if kind is RepoType.MODEL else DATASET_FACETS


def count_values(kind: RepoType, repos: Iterable[Repo]) -> dict[str, list[tuple[str, int]]]:
    """For each facet, its most common values among `repos`, most common first."""
    counters: dict[str, Counter[str]] = {f.param: Counter() for f in facets_for(kind)}
    for repo in repos:
        facts = card_facts(repo.card_data)
        for facet in facets_for(kind):
            counters[facet.param].update(set(facet.values(repo, facts)))
    return {param: counter.most_common(FACET_VALUES) for param, counter in counters.items()}
