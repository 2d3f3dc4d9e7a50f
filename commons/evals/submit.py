"""Queue an evaluation: pin the model and every task's dataset to a commit, check access, submit.

`Jobs.submit` pins only a kind's fixed inputs and insists that outputs go to a new repo; an
evaluation has one dataset per task and writes back to the model it evaluated, so it is queued
here, with the same credential rules (a write token, not a fine-grained one). The owner needs read
access to the model and every dataset; whether the results become a commit or a pull request is
decided when they are published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import Job
from commons.errors import InvalidRequest, PermissionDenied, Unauthorized
from commons.hub.storage import HubStorage
from commons.jobs import queue
from commons.jobs.inputs import resolve_commit
from commons.jobs.service import MAX_TIMEOUT_S
from commons.ml.specs import EvalSpec, SpecError


def require_submitter(actor: Actor | None) -> Actor:
    """The actor, if it may submit jobs: a write credential that is not a fine-grained token."""
    if actor is None:
        raise Unauthorized("You must be authenticated to submit jobs")
    if not actor.can_write:
        raise PermissionDenied("Submitting a job needs a write token")
    if actor.scopes is not None:
        # The job runs with its owner's full rights, which a repo-scoped token does not carry.
        raise PermissionDenied("Fine-grained tokens cannot submit jobs; use a write token")
    return actor


def submit_eval(session: Session, storage: HubStorage, actor: Actor | None, spec: Mapping[str, Any],
                timeout_s: int | None = None, max_attempts: int = 2) -> Job:
    """Validate `spec` (an EvalSpec as JSON, revisions may be branch names), pin it, queue it."""
    actor = require_submitter(actor)
    if not isinstance(spec, Mapping):
        raise InvalidRequest("spec must be a JSON object")
    if timeout_s is not None and not 1 <= timeout_s <= MAX_TIMEOUT_S:
        raise InvalidRequest(f"timeout_s must be between 1 and {MAX_TIMEOUT_S}")
    if not 1 <= max_attempts <= 10:
        raise InvalidRequest("max_attempts must be between 1 and 10")
    try:  # the shape first, before touching any repo
        EvalSpec.from_json(_unpinned(spec), pinned=False)
    except SpecError as exc:
        raise InvalidRequest(f"Invalid eval spec: {exc}") from None
    pinned = dict(spec)
    pinned["model"] = _pin(session, storage, actor, "model", spec["model"])
    pinned["tasks"] = [{**t, "dataset": _pin(session, storage, actor, "dataset", t["dataset"])}
                       for t in spec["tasks"]]
    try:
        parsed = EvalSpec.from_json({**pinned, "kind": "eval"})
    except SpecError as exc:
        raise InvalidRequest(f"Invalid eval spec: {exc}") from None
    return queue.submit(session, parsed.kind, parsed.to_json(), actor.user_id, parsed.spec_version,
                        timeout_s or queue.DEFAULT_TIMEOUT_S, max_attempts)


def _unpinned(spec: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` with every revision defaulted to main, for the shape check before pinning."""

    def named(given: Any) -> Any:
        return {"revision": "main", **given} if isinstance(given, Mapping) else given

    tasks = spec.get("tasks")
    if isinstance(tasks, list):
        tasks = [{**t, "dataset": named(t.get("dataset"))} if isinstance(t, Mapping) else t for t in tasks]
    return {**spec, "kind": "eval", "model": named(spec.get("model")), "tasks": tasks}


def _pin(session: Session, storage: HubStorage, actor: Actor, repo_type: str, given: Mapping[str, Any]
         ) -> dict[str, Any]:
    revision = str(given.get("revision") or "main")
    sha = resolve_commit(session, storage, actor, repo_type, str(given["repo_id"]), revision)
    return {**given, "repo_type": repo_type, "revision": sha}


def eval_spec(model: str, revision: str | None, tasks: Sequence[tuple[str, str, str | None]],
              settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An eval spec from names: tasks as (task name, dataset repo id, dataset revision or None)."""
    return {
        "model": {"repo_id": model, **({"revision": revision} if revision else {})},
        "tasks": [{"name": name, "dataset": {"repo_id": repo, **({"revision": rev} if rev else {})}}
                  for name, repo, rev in tasks],
        "settings": dict(settings or {}),
    }
