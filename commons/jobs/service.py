"""Jobs as callers see them: submit with access checks, look up, list, follow, cancel.

Access: a job is visible to its owner and to site administrators only. To submit, the caller needs
a write credential, read access to every input, and the right to create the output repo.
Inputs named by branch or tag are pinned to the commit they point at when the job is submitted.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.permissions import can_create_in
from commons.db.models import Job, JobEvent, User
from commons.errors import Conflict, InvalidRequest, PermissionDenied, Unauthorized
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.hub.storage import HubStorage
from commons.jobs import queue
from commons.jobs.inputs import resolve_commit
from commons.jobs.licensing import preflight
from commons.jobs.states import JobNotFound, JobState
from commons.ml.specs import KINDS, SpecError, parse_spec

MAX_TIMEOUT_S = 7 * 24 * 3600


# Kinds whose inputs are not the flat `INPUTS` of a new-repo job (an evaluation pins a dataset per
# task and writes back to the model it reads) validate, pin and queue through their own function.
SUBMITTERS: dict[str, str] = {"eval": "commons.evals.submit:submit_eval"}


class Jobs:
    """Job service for one unit of work (one DB session)."""

    def __init__(self, session: Session, storage: HubStorage) -> None:
        self.session = session
        self.storage = storage

    def submit(self, actor: Actor | None, kind: str, spec: dict[str, Any], timeout_s: int | None = None,
               max_attempts: int = 2) -> Job:
        """Validate `spec`, pin its inputs to commits, check access, queue it."""
        if actor is None:
            raise Unauthorized("You must be authenticated to submit jobs")
        if not actor.can_write:
            raise PermissionDenied("Submitting a job needs a write token")
        if actor.scopes is not None:
            # The job runs with its owner's full rights, which a repo-scoped token does not carry.
            raise PermissionDenied("Fine-grained tokens cannot submit jobs; use a write token")
        if kind not in KINDS:
            raise InvalidRequest(f"Unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        if kind in SUBMITTERS:
            module, _, name = SUBMITTERS[kind].partition(":")
            submit: Any = getattr(importlib.import_module(module), name)
            job: Job = submit(self.session, self.storage, actor, spec, timeout_s, max_attempts)
            return job
        if not isinstance(spec, dict):
            raise InvalidRequest("spec must be a JSON object")
        if timeout_s is not None and not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise InvalidRequest(f"timeout_s must be between 1 and {MAX_TIMEOUT_S}")
        if not 1 <= max_attempts <= 10:
            raise InvalidRequest("max_attempts must be between 1 and 10")
        pinned = dict(spec)
        for name, default_type in KINDS[kind].INPUTS.items():
            given = pinned.get(name)
            if not isinstance(given, dict) or not given.get("repo_id"):
                raise InvalidRequest(f"spec.{name} must be an object with repo_id (and revision)")
            repo_type = str(given.get("repo_type", default_type))
            revision = str(given.get("revision") or "main")
            sha = resolve_commit(self.session, self.storage, actor, repo_type, str(given["repo_id"]), revision)
            pinned[name] = {**given, "repo_type": repo_type, "revision": sha}
        try:
            parsed = parse_spec(kind, pinned)
        except SpecError as exc:
            raise InvalidRequest(f"Invalid {kind} spec: {exc}") from None
        if parsed.output_repo is not None:
            ref = RepoRef.parse(RepoType.MODEL, parsed.output_repo)
            if not can_create_in(actor, ref.namespace):
                raise PermissionDenied(f"You don't have the rights to create a repo under {ref.namespace!r}")
            if Repos(self.session, self.storage).find(ref) is not None:
                raise Conflict(f"Output repo {parsed.output_repo} already exists; jobs publish to a new repo")
            preflight(self.session, self.storage, actor, parsed)
        return queue.submit(self.session, kind, parsed.to_json(), actor.user_id, parsed.spec_version,
                            timeout_s or queue.DEFAULT_TIMEOUT_S, max_attempts)

    def get(self, actor: Actor | None, job_id: int) -> Job:
        if actor is None:
            raise Unauthorized("You must be authenticated to see jobs")
        job = self.session.get(Job, job_id)
        if job is None or not (actor.is_admin or job.owner_id == actor.user_id):
            raise JobNotFound(job_id)
        return job

    def list_jobs(self, actor: Actor | None, state: str | None = None, everyone: bool = False, limit: int = 100,
             before: int | None = None) -> list[Job]:
        """Newest first. Administrators may ask for `everyone`'s jobs."""
        if actor is None:
            raise Unauthorized("You must be authenticated to list jobs")
        query = select(Job).order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))
        if not (everyone and actor.is_admin):
            query = query.where(Job.owner_id == actor.user_id)
        if state:
            try:
                query = query.where(Job.state == JobState(state).value)
            except ValueError:
                raise InvalidRequest(f"Unknown job state {state!r}") from None
        if before is not None:
            query = query.where(Job.id < before)
        return list(self.session.scalars(query))

    def events(self, actor: Actor | None, job_id: int, after: int = 0, limit: int = 1000) -> list[JobEvent]:
        self.get(actor, job_id)
        return queue.events_after(self.session, job_id, after, max(1, min(limit, 5000)))

    def cancel(self, actor: Actor | None, job_id: int) -> JobState:
        if actor is not None and (not actor.can_write or actor.scopes is not None):
            raise PermissionDenied("Cancelling a job needs a write token")
        self.get(actor, job_id)
        return queue.request_cancel(self.session, job_id)

    def owner_name(self, job: Job) -> str | None:
        if job.owner_id is None:
            return None
        user = self.session.get(User, job.owner_id)
        return user.name if user is not None else None


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def job_json(job: Job, owner: str | None) -> dict[str, Any]:
    """A job as the API and the CLI show it."""
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "owner": owner, "spec": job.spec,
        "specVersion": job.spec_version, "createdAt": _iso(job.created_at), "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at), "heartbeatAt": _iso(job.heartbeat_at), "worker": job.worker,
        "attempts": job.attempts, "maxAttempts": job.max_attempts, "timeoutS": job.timeout_s,
        "cancelRequested": job.cancel_requested, "progress": job.progress or {}, "result": job.result,
        "error": job.error,
    }


def event_json(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "at": _iso(event.at), "kind": event.kind, "data": event.data}
