"""Evaluations over HTTP (`/api/commons/evals`): submit, a model's results and report card, leaderboards.

A private model's results are answered exactly as the model itself is: RepoNotFound for whoever
may not see it, and leaderboards leave it out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep, ServicesDep, SessionDep
from commons.errors import InvalidRequest
from commons.evals import results
from commons.evals.report import Line
from commons.evals.submit import eval_spec, require_submitter, submit_eval
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need
from commons.jobs.service import Jobs, job_json

router = APIRouter(prefix="/api/commons/evals", tags=["evals"])


def _tasks(raw: Any) -> list[tuple[str, str, str | None]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("tasks must be a non-empty list of {name, dataset, revision?}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("dataset"), str):
            raise InvalidRequest("each task needs a name and a dataset repo id")
        revision = item.get("revision")
        out.append((item["name"], item["dataset"], str(revision) if revision else None))
    return out


@router.post("")
def submit(request: Request, session: SessionDep, services: ServicesDep, actor: ActorDep,
           body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Queue an evaluation: `{"model": "ns/name", "revision": "main", "tasks": [{"name": "hellaswag",
    "dataset": "benchmarks/hellaswag"}], "settings": {"limit": 200}}`. Revisions are pinned to commits."""
    require_submitter(actor)
    model = body.get("model")
    settings = body.get("settings") or {}
    timeout = body.get("timeoutS")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model must be a repo id")
    if not isinstance(settings, dict) or (timeout is not None and not isinstance(timeout, int)):
        raise InvalidRequest("settings must be an object and timeoutS an integer")
    spec = eval_spec(model, body.get("revision"), _tasks(body.get("tasks")), settings)
    job = submit_eval(session, services.storage, actor, spec, timeout)
    audit(request, "job.submit", f"job:{job.id}", actor.name if actor else None, kind=job.kind,
          output=job.spec["model"]["repo_id"])
    return job_json(job, Jobs(session, services.storage).owner_name(job))


def _line_json(line: Line) -> dict[str, Any]:
    out = results.result_json(line.score)
    if line.delta is not None:
        out["parent"] = {"value": line.delta.parent.value, "modelSha": line.delta.parent.model_sha,
                         "diff": line.delta.diff, "regression": line.delta.regression,
                         "significant": line.delta.significant}
    elif line.parent_note:
        out["parent"] = {"note": line.parent_note}
    return out


@router.get("/models/{namespace}/{name}")
def model_results(namespace: str, name: str, actor: ActorDep, repos: ReposDep, services: ServicesDep
                  ) -> dict[str, Any]:
    """Every stored score of a model, and its report card: the newest scores by group, with the deltas
    against its parent in the lineage and the regressions beyond `eval_regression_threshold`."""
    repo = repos.get(actor, RepoRef.parse(RepoType.MODEL, f"{namespace}/{name}"), Need.SEE)
    card, scores = results.model_report(repos.session, repos, actor, repo, services.settings.eval_regression_threshold)
    return {
        "model": repo.repo_id, "headSha": repo.head_sha, "parent": card.parent, "threshold": card.threshold,
        "card": {group: [_line_json(line) for line in lines] for group, lines in card.groups.items()},
        "regressions": [_line_json(line) for line in card.regressions],
        "results": [results.result_json(s) for s in scores],
    }


@router.get("/leaderboard")
def leaderboard(actor: ActorDep, repos: ReposDep, task: str | None = None, metric: str | None = None,
                license: str | None = None, base_model: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Models ranked on `task` by `metric` (default: the task's headline metric); without `task`, the
    tasks that have results."""
    session = repos.session
    if not task:
        return {"tasks": results.tasks_with_results(session)}
    chosen, standings = results.leaderboard(session, repos, actor, task, metric, license, base_model, limit)
    return {"task": task, "metric": chosen, "metrics": results.metrics_of(session, task),
            "entries": [{"rank": s.rank, "model": s.repo.repo_id, **results.result_json(s.score)}
                        for s in standings]}
