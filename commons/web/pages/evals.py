"""Evaluation pages: the report card panel on a model's card page, the Evaluation tab, the leaderboard.

All three read the results table through `commons.evals.results`, with the viewer's rights: a
private model's scores appear only to those who may see the model. The report card compares each
score with the parent's (from the model's lineage) when both were measured the same way, and flags
regressions beyond `COMMONS_EVAL_REGRESSION_THRESHOLD`; charts are inline SVG (`web.charts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from commons.evals import results
from commons.evals.parent import parent_repo
from commons.evals.report import CATEGORIES, Line, ReportCard, Score, latest, pretty_task, report_card
from commons.hub.gitrepo import GitRepo
from commons.hub.ids import RepoType
from commons.hub.repos import Repos
from commons.web.charts import Interval, interval_chart
from commons.web.deps import ServicesDep, SessionDep, ViewerDep
from commons.web.pageroute import PageRoute
from commons.web.panels import Panel, Tab, register_panel, register_tab
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render

router = APIRouter(route_class=PageRoute)
GROUP_LABELS = {"capability": "Capability", "bias": "Bias", "safety": "Safety"}


def _card_maker(view: RepoView) -> tuple[Callable[[float], ReportCard], list[Score]]:
    """The report card as a function of the threshold (the panel has no settings; its template does)."""
    session = view.repos.session
    scores = results.scores_of(session, view.repo)
    if not scores:  # most models: no lineage lookup on their card page
        return (lambda threshold: report_card([], [], None, threshold)), scores
    parent_id, parent = parent_repo(view.repos, view.viewer.actor, view.repo)
    parent_scores = results.scores_of(session, parent) if parent is not None else []
    return (lambda threshold: report_card(scores, parent_scores, parent_id, threshold)), scores


def fmt(value: float | None, digits: int = 3, sign: bool = False) -> str:
    """A score for a table: fixed decimals near 1, 4 significant digits for huge or tiny ones (perplexity)."""
    if value is None:
        return "\u2013"  # an en dash
    magnitude = abs(value)
    plus = "+" if sign else ""
    if magnitude >= 1e5 or 0 < magnitude < 1e-3:
        return f"{value:{plus}.3e}"
    if magnitude >= 100:
        return f"{value:{plus}.1f}"
    return f"{value:{plus}.{digits}f}"


def group_chart(lines: Sequence[Line], group: str, width: int = 640) -> Markup | None:
    """Headline scores of a group with their 95% intervals, on one axis (scores within [-1, 1] only)."""
    rows = [Interval(pretty_task(line.score.task) + f" · {line.score.metric}", line.score.value,
                     line.score.ci_low, line.score.ci_high)
            for line in lines if line.score.headline and -1.0 <= line.score.value <= 1.0]
    if not rows:
        return None
    low = -1.0 if any(r.value < 0 for r in rows) else 0.0
    return interval_chart(rows, title=f"{GROUP_LABELS.get(group, group)} scores with 95% intervals",
                          x_label="score", width=width, domain=(low, 1.0))


def _panel(view: RepoView, git: GitRepo, commit: str | None) -> dict[str, Any] | None:
    if view.kind is not RepoType.MODEL:
        return None
    make, scores = _card_maker(view)
    if not scores:
        return None
    return {"card": make, "url": f"{view.base}/evaluation", "labels": GROUP_LABELS, "pretty": pretty_task, "fmt": fmt,
            "base": view.base}


@repo_route("/evaluation")
def evaluation_page(request: Request, view: RepoViewDep, services: ServicesDep) -> Response:
    """Every score with its interval, revisions and settings, against the parent's; per-group breakdowns."""
    make, scores = _card_maker(view)
    card = make(services.settings.eval_regression_threshold)
    charts = {group: group_chart(lines, group) for group, lines in card.groups.items()}
    subgroups: dict[str, list[Score]] = {}
    for s in sorted(results_latest_subgroups(scores), key=lambda s: (s.task, s.subgroup, s.metric)):
        subgroups.setdefault(s.task, []).append(s)
    return render(request, "pages/evaluation.html", view=view, repo=view.repo, tab="evaluation", card=card,
                  charts=charts, labels=GROUP_LABELS, pretty=pretty_task, subgroups=subgroups,
                  categories=CATEGORIES, count=len(scores), fmt=fmt)


def results_latest_subgroups(scores: Sequence[Score]) -> list[Score]:
    """The per-group scores of the runs the card shows (same task, model commit and setup)."""
    shown = {(s.task, s.model_sha, s.setup) for s in latest(scores) if not s.subgroup}
    return [s for s in latest(scores) if s.subgroup and (s.task, s.model_sha, s.setup) in shown]


@router.get("/leaderboard")
def leaderboard_page(request: Request, viewer: ViewerDep, session: SessionDep, services: ServicesDep,
                     task: str | None = None, metric: str | None = None, license: str | None = None,
                     base_model: str | None = None) -> Response:
    """Models ranked per task, filtered by license and base model."""
    tasks = results.tasks_with_results(session)
    task = task if task in tasks else (tasks[0] if tasks else None)
    license = (license or "").strip()[:100] or None
    base_model = (base_model or "").strip()[:200] or None
    metrics = results.metrics_of(session, task) if task else []
    metric = metric if metric in metrics else None
    chosen, standings = (results.leaderboard(session, Repos(session, services.storage), viewer.actor, task, metric,
                                             license, base_model) if task else (None, []))
    rows = [Interval(s.repo.repo_id, s.score.value, s.score.ci_low, s.score.ci_high) for s in standings[:20]]
    fits = all(-1.0 <= r.value <= 1.0 for r in rows)
    chart = interval_chart(rows, title=f"{pretty_task(task or '')} · {chosen}", x_label=chosen or "",
                           domain=(0.0, 1.0) if fits and all(r.value >= 0 for r in rows) else None) if rows else None
    return render(request, "pages/leaderboard.html", tasks=tasks, task=task, metric=chosen, metrics=metrics,
                  license=license, base_model=base_model, standings=standings, chart=chart, pretty=pretty_task,
                  fmt=fmt)


register_panel(Panel("evaluation", "partials/eval_panel.html", _panel, order=20))
register_tab(Tab("evaluation", "Evaluation", "check", "evaluation", kinds=("model",), order=35))
