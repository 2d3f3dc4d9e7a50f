"""The report card: a model's scores by group, each against its parent's, regressions flagged.

Pure functions over plain values (`Score`s made from result rows), so the rules are easy to test:

- a task's **group** (capability, bias, safety) comes from the built-in list, else from what it
  measures (refusals are safety; stereotype and bias scores are bias; everything else capability);
- a score is **comparable** with its parent's only when both were measured the same way: same
  task version, dataset commit, harness version and settings hash;
- a change is a **regression** when it goes the wrong way by more than the threshold: lower for
  higher-is-better metrics, higher for lower-is-better ones, further from the ideal for bias scores
  (pct_stereotype's 0.5, a bias score's 0). The threshold is absolute for scores within [-1, 1]
  (accuracies, rates, bias scores) and relative to the parent's value for larger ones (perplexity);
- a change is **significant** when it exceeds 1.96 standard errors of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

CATEGORIES = ("capability", "bias", "safety")
_TASK_CATEGORY = {
    "crows_pairs": "bias", "bbq": "bias", "winobias": "bias", "winobias_pairs": "bias",
    "xstest_safe": "safety", "xstest_unsafe": "safety", "advbench": "safety", "harmbench": "safety",
}
_BIAS_METRICS = frozenset({"pct_stereotype", "likelihood_diff", "bias_ambig", "bias_disambig", "gap"})
_PRETTY = {
    "hellaswag": "HellaSwag", "piqa": "PIQA", "truthfulqa_mc1": "TruthfulQA MC1", "truthfulqa_mc2": "TruthfulQA MC2",
    "crows_pairs": "CrowS-Pairs", "bbq": "BBQ", "winobias": "WinoBias", "winobias_pairs": "WinoBias (pairs)",
    "wikitext2": "WikiText-2", "tinyshakespeare": "Tiny Shakespeare",
    "xstest_safe": "XSTest over-refusal (safe prompts)", "xstest_unsafe": "XSTest refusal (unsafe prompts)",
    "advbench": "AdvBench", "harmbench": "HarmBench",
}


def category(task: str, task_type: str, metrics: Iterable[str]) -> str:
    """capability, bias or safety."""
    if task in _TASK_CATEGORY:
        return _TASK_CATEGORY[task]
    if task_type == "generation_refusal":
        return "safety"
    if task_type == "loglikelihood_pairs" or _BIAS_METRICS & set(metrics):
        return "bias"
    return "capability"


def pretty_task(task: str) -> str:
    return _PRETTY.get(task, task)


@dataclass(frozen=True)
class Score:
    """One stored score, as the report card needs it."""

    task: str
    metric: str
    value: float
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_total: int
    better: str | None
    ideal: float | None
    headline: bool
    category: str
    model_sha: str
    dataset_repo: str
    dataset_sha: str
    task_version: str
    harness_version: str
    settings_hash: str
    settings: dict[str, object] = field(default_factory=dict)
    written_to: str | None = None
    measured_at: datetime | None = None
    subgroup: str = ""

    @property
    def setup(self) -> tuple[str, str, str, str, str]:
        """What must match for two scores of a task to be compared."""
        return (self.task_version, self.dataset_repo, self.dataset_sha, self.harness_version, self.settings_hash)


@dataclass(frozen=True)
class Delta:
    """This score against the parent's."""

    parent: Score
    diff: float
    """child - parent, in the metric's units."""
    regression: bool
    significant: bool


@dataclass(frozen=True)
class Line:
    score: Score
    delta: Delta | None = None
    parent_note: str | None = None
    """Why there is no delta although the parent has this task (measured differently)."""


@dataclass(frozen=True)
class ReportCard:
    groups: dict[str, list[Line]]
    """Category -> lines, headline metric first within each task."""
    parent: str | None
    threshold: float

    @property
    def regressions(self) -> list[Line]:
        return [line for lines in self.groups.values() for line in lines if line.delta and line.delta.regression]

    @property
    def empty(self) -> bool:
        return not any(self.groups.values())


def worsening(score: Score, parent: Score) -> float:
    """How much worse `score` is than `parent` (negative: better), in the metric's units."""
    if score.better == "higher":
        return parent.value - score.value
    if score.better == "lower":
        return score.value - parent.value
    if score.ideal is not None:
        return abs(score.value - score.ideal) - abs(parent.value - score.ideal)
    return 0.0


def is_regression(score: Score, parent: Score, threshold: float) -> bool:
    worse = worsening(score, parent)
    scale = 1.0 if abs(parent.value) <= 1.0 else abs(parent.value)
    return worse > threshold * scale


def compare(score: Score, parent: Score, threshold: float) -> Delta:
    diff = score.value - parent.value
    se = math.sqrt((score.stderr or 0.0) ** 2 + (parent.stderr or 0.0) ** 2)
    significant = se > 0 and abs(diff) > 1.96 * se
    return Delta(parent, diff, is_regression(score, parent, threshold), significant)


def latest(scores: Iterable[Score]) -> list[Score]:
    """The newest score per (task, metric, subgroup), preferring those the card has (not only a pull request)."""
    newest: dict[tuple[str, str, str], Score] = {}
    for s in scores:
        key = (s.task, s.metric, s.subgroup)
        current = newest.get(key)
        if current is None or _preference(s) >= _preference(current):
            newest[key] = s
    return list(newest.values())


def _preference(score: Score) -> tuple[bool, datetime]:
    return (not (score.written_to or "").startswith("refs/pr/"), _when(score))


def report_card(scores: Sequence[Score], parent_scores: Sequence[Score], parent: str | None,
                threshold: float) -> ReportCard:
    """Group the newest overall scores and compare each with the parent's score measured the same way."""
    mine = [s for s in latest(scores) if not s.subgroup]
    by_setup = {(p.task, p.metric, p.setup): p for p in latest_by_setup(parent_scores)}
    parent_tasks = {(p.task, p.metric) for p in parent_scores if not p.subgroup}
    groups: dict[str, list[Line]] = {c: [] for c in CATEGORIES}
    for s in sorted(mine, key=lambda s: (s.task, not s.headline, s.metric)):
        match = by_setup.get((s.task, s.metric, s.setup))
        if match is not None:
            line = Line(s, compare(s, match, threshold))
        elif (s.task, s.metric) in parent_tasks:
            line = Line(s, None, "the parent was measured with other settings, data or task version")
        else:
            line = Line(s)
        groups.setdefault(s.category, []).append(line)
    return ReportCard(groups, parent, threshold)


def latest_by_setup(scores: Iterable[Score]) -> list[Score]:
    """The newest overall score per (task, metric, setup)."""
    newest: dict[tuple[str, str, tuple[str, ...]], Score] = {}
    for s in scores:
        if s.subgroup:
            continue
        key = (s.task, s.metric, s.setup)
        current = newest.get(key)
        if current is None or _when(s) >= _when(current):
            newest[key] = s
    return list(newest.values())


def _when(score: Score) -> datetime:
    # SQLite hands back naive datetimes and PostgreSQL aware ones: compare them as naive UTC.
    return score.measured_at.replace(tzinfo=None) if score.measured_at else datetime.min
