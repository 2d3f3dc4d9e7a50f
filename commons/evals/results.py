"""The results table: store what an evaluation job measured, read it back for cards and leaderboards.

Rows are keyed by everything a score depends on (see `EvalResult`); storing a task again under the
same key replaces its rows, so re-running an evaluation never duplicates a score. Reading checks
visibility: a private model's scores are returned only to those who may see the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.permissions import can_see
from commons.db.models import EvalResult, Repo
from commons.errors import IntegrityError
from commons.evals.parent import parent_repo
from commons.evals.report import ReportCard, Score, category, report_card
from commons.hub.repos import Repos

_KEY = ("task", "task_version", "dataset_repo", "dataset_sha", "harness_version", "settings_hash")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IntegrityError(f"evaluation result: {what} is not a finite number ({value!r})")
    return float(value)


def _optional(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise IntegrityError(f"evaluation result: {what} must be a string of 1 to {limit} characters")
    return value


def rows_for(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table rows (as column values, without repo and job) for one task record of results.json."""
    task = _text(record.get("task"), "task", 64)
    metrics = record.get("metrics") or []
    names = [m.get("name") for m in metrics if isinstance(m, Mapping)]
    base = {
        "model_sha": _text((record.get("model") or {}).get("sha"), "model sha", 40),
        "task": task,
        "task_version": _text(str(record.get("task_version")), "task_version", 32),
        "task_type": _text(record.get("task_type"), "task_type", 32),
        "category": category(task, str(record.get("task_type")), [str(n) for n in names]),
        "dataset_repo": _text((record.get("dataset") or {}).get("repo"), "dataset repo", 200),
        "dataset_sha": _text((record.get("dataset") or {}).get("sha"), "dataset sha", 40),
        "harness_version": _text(str(record.get("harness_version")), "harness_version", 32),
        "settings_hash": _text(record.get("settings_hash"), "settings_hash", 16),
        "settings": dict(record.get("scoring_key") or {}),
        "n_total": int(record.get("n_total") or 0),
    }
    headline = record.get("headline")

    def row(metric: Mapping[str, Any], subgroup: str) -> dict[str, Any]:
        ci = metric.get("ci95") or None
        name = _text(metric.get("name"), "metric name", 64)
        better = metric.get("better")
        return {**base, "metric": name, "subgroup": subgroup, "value": _number(metric.get("value"), name),
                "stderr": _optional(metric.get("stderr"), f"{name} stderr"),
                "ci_low": _optional(ci[0], f"{name} ci") if ci else None,
                "ci_high": _optional(ci[1], f"{name} ci") if ci else None,
                "n": int(metric.get("n") or record.get("n") or 0),
                "better": better if better in ("higher", "lower") else None,
                "ideal": _optional(metric.get("ideal"), f"{name} ideal"),
                "headline": name == headline and not subgroup}

    out = [row(m, "") for m in metrics]
    for column, by_value in (record.get("groups") or {}).items():
        for value, group_metrics in by_value.items():
            subgroup = f"{column}={value}"[:200]
            out += [row(m, subgroup) for m in group_metrics]
    return out


def store(session: Session, repo: Repo, records: Sequence[Mapping[str, Any]], job_id: int | None,
          written_to: str | None) -> int:
    """Replace the rows of each task record under its key; returns how many rows were written."""
    count = 0
    for record in records:
        rows = rows_for(record)
        if not rows:
            continue
        key = {name: rows[0][name] for name in ("model_sha", *_KEY)}
        session.execute(delete(EvalResult).where(EvalResult.repo_id == repo.id,
                                                 *[getattr(EvalResult, k) == v for k, v in key.items()]))
        for values in rows:
            session.add(EvalResult(repo_id=repo.id, job_id=job_id, written_to=written_to, **values))
        count += len(rows)
    session.flush()
    return count


def score_of(row: EvalResult) -> Score:
    return Score(task=row.task, metric=row.metric, value=row.value, stderr=row.stderr, ci_low=row.ci_low,
                 ci_high=row.ci_high, n=row.n, n_total=row.n_total, better=row.better, ideal=row.ideal,
                 headline=row.headline, category=row.category, model_sha=row.model_sha,
                 dataset_repo=row.dataset_repo, dataset_sha=row.dataset_sha, task_version=row.task_version,
                 harness_version=row.harness_version, settings_hash=row.settings_hash, settings=dict(row.settings),
                 written_to=row.written_to, measured_at=row.created_at, subgroup=row.subgroup)


def scores_of(session: Session, repo: Repo) -> list[Score]:
    """Every score of a repo (the caller has checked the viewer may see it), oldest first."""
    rows = session.scalars(select(EvalResult).where(EvalResult.repo_id == repo.id).order_by(EvalResult.id))
    return [score_of(r) for r in rows]


def result_json(score: Score) -> dict[str, Any]:
    """A score as the API shows it."""
    return {
        "task": score.task, "metric": score.metric, "subgroup": score.subgroup or None, "value": score.value,
        "stderr": score.stderr, "ci95": [score.ci_low, score.ci_high] if score.ci_low is not None else None,
        "n": score.n, "nTotal": score.n_total, "better": score.better, "ideal": score.ideal,
        "headline": score.headline, "category": score.category, "modelSha": score.model_sha,
        "dataset": {"repo": score.dataset_repo, "sha": score.dataset_sha}, "taskVersion": score.task_version,
        "harnessVersion": score.harness_version, "settingsHash": score.settings_hash, "settings": score.settings,
        "writtenTo": score.written_to,
        "measuredAt": score.measured_at.isoformat() if score.measured_at else None,
    }


@dataclass(frozen=True)
class Standing:
    """One model on a leaderboard."""

    rank: int
    repo: Repo
    score: Score


def tasks_with_results(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(EvalResult.task).distinct())))


def headline_metric(session: Session, task: str) -> str | None:
    return session.scalar(select(EvalResult.metric).where(EvalResult.task == task, EvalResult.headline.is_(True))
                          .order_by(EvalResult.id.desc()).limit(1))


def metrics_of(session: Session, task: str) -> list[str]:
    return sorted(set(session.scalars(select(EvalResult.metric).where(EvalResult.task == task,
                                                                       EvalResult.subgroup == ""))))


def _card_values(card: Mapping[str, Any] | None, key: str) -> set[str]:
    value = (card or {}).get(key)
    items = value if isinstance(value, list) else [value]
    return {str(v).casefold() for v in items if isinstance(v, str | int | float) and not isinstance(v, bool)}


def _rank_key(score: Score) -> float:
    if score.better == "lower":
        return score.value
    if score.better == "higher":
        return -score.value
    return abs(score.value - score.ideal) if score.ideal is not None else -score.value


def leaderboard(session: Session, repos: Repos, actor: Actor | None, task: str, metric: str | None = None,
                license: str | None = None, base_model: str | None = None, limit: int = 100
                ) -> tuple[str | None, list[Standing]]:
    """Models ranked on `task` by `metric` (default: the task's headline), newest score per model.

    Only models the caller may see; `license` and `base_model` filter on the model's card.
    """
    metric = metric or headline_metric(session, task)
    if metric is None:
        return None, []
    rows = session.execute(select(EvalResult, Repo).join(Repo, Repo.id == EvalResult.repo_id)
                           .where(EvalResult.task == task, EvalResult.metric == metric, EvalResult.subgroup == "")
                           .order_by(EvalResult.id.desc()))
    best: dict[str, tuple[Repo, Score]] = {}
    for row, repo in rows:
        if repo.id in best:
            continue  # rows come newest first: the first one is the model's current score
        if repo.disabled or not can_see(actor, repos.access(actor, repo)):
            continue
        if license and license.casefold() not in _card_values(repo.card_data, "license"):
            continue
        if base_model and base_model.casefold() not in _card_values(repo.card_data, "base_model"):
            continue
        best[repo.id] = (repo, score_of(row))
    ordered = sorted(best.values(), key=lambda pair: (_rank_key(pair[1]), pair[0].namespace, pair[0].name))
    return metric, [Standing(i + 1, repo, score) for i, (repo, score) in enumerate(ordered[:limit])]


def model_report(session: Session, repos: Repos, actor: Actor | None, repo: Repo, threshold: float
                 ) -> tuple[ReportCard, list[Score]]:
    """A model's report card (against its parent, when the viewer may see it) and all its scores."""
    scores = scores_of(session, repo)
    parent_id, parent = parent_repo(repos, actor, repo)
    parent_scores = scores_of(session, parent) if parent is not None else []
    return report_card(scores, parent_scores, parent_id, threshold), scores
