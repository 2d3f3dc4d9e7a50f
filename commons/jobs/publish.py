"""Put a finished job's outputs into the hub: a new repo, one commit, under the job owner's name.

The output repo is created only here, after the child succeeded, so a failed, cancelled or killed
job never leaves a repo behind. If creating the commit fails, the fresh repo is deleted again. The
one remaining window (the process dies between creating the repo and moving its ref, a few
milliseconds) is closed by `discard_partial_output`, which recovery calls: it deletes an output
repo that this job created and that still holds only its initial commit.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.tokens import actor_for
from commons.db.models import Job, Repo, User
from commons.errors import Conflict, PermissionDenied
from commons.hub.gitrepo import MAIN
from commons.hub.ids import RepoRef, RepoType
from commons.hub.publish import commit_directory
from commons.hub.repos import Repos
from commons.hub.storage import HubStorage
from commons.hub.trees import file_info
from commons.jobs.licensing import license_outputs
from commons.ml.specs import JobSpec, parse_spec

PROVENANCE = "provenance.json"


def owner_actor(session: Session, job: Job) -> Actor:
    """The job's owner as an actor with a write credential: jobs act with the owner's current rights."""
    owner = session.get(User, job.owner_id) if job.owner_id is not None else None
    if owner is None or owner.disabled:
        raise PermissionDenied(f"the owner of job {job.id} no longer exists or is disabled")
    return actor_for(session, owner, "write", token_name=f"job-{job.id}")


def published_by(storage: HubStorage, repo: Repo, job_id: int) -> str | None:
    """The head commit if it carries this job's provenance.json, else None."""
    git = storage.git(repo.id)
    head = git.ref_target(f"refs/heads/{MAIN}")
    if head is None:
        return None
    info = file_info(git, head, PROVENANCE)
    if info is None or info.lfs is not None:
        return None
    try:
        record: dict[str, Any] = json.loads(git.read_blob(info.oid))
    except ValueError:
        return None
    return head if record.get("job", {}).get("id") == job_id else None


def commit_message(job: Job, spec: JobSpec, metrics: dict[str, Any]) -> tuple[str, str]:
    summary = f"{spec.summary()} (job {job.id})"
    lines = [f"{name}: {given.repo_id}@{given.revision}" for name, given in spec.inputs().items()]
    lines += [f"{key}: {value}" for key, value in metrics.items() if isinstance(value, int | float | str)]
    return summary, "\n".join(lines)


Publisher = Callable[[Session, HubStorage, Job, Any, Path, dict[str, Any]], str]
"""(session, storage, job, spec, output dir, metrics) -> the commit sha the outputs went to."""

# Kinds whose outputs do not go to a new repo name their publisher here, as "module:function".
PUBLISHERS: dict[str, str] = {"eval": "commons.evals.writeback:publish_eval"}


def publisher_for(kind: str) -> Publisher:
    target = PUBLISHERS.get(kind)
    if target is None:
        return publish_outputs
    module, _, name = target.partition(":")
    fn: Publisher = getattr(importlib.import_module(module), name)
    return fn


def publish_outputs(session: Session, storage: HubStorage, job: Job, spec: JobSpec, out_dir: Path,
                    metrics: dict[str, Any]) -> str:
    """Create `spec.output_repo` and commit `out_dir` to it as one commit; returns the commit sha.

    Idempotent for a job that was interrupted after publishing: the existing commit is returned.
    """
    assert spec.output_repo is not None
    actor = owner_actor(session, job)
    ref = RepoRef.parse(RepoType.MODEL, spec.output_repo)
    repos = Repos(session, storage)
    existing = repos.find(ref)
    if existing is not None:
        done = published_by(storage, existing, job.id)
        if done is not None:
            return done
        raise Conflict(f"output repo {spec.output_repo} was created by someone else while the job ran")
    license_outputs(session, storage, actor, spec.output_repo, out_dir)  # may refuse: before the repo exists
    repo = repos.create(actor, ref, private=spec.private)
    session.commit()
    summary, description = commit_message(job, spec, metrics)
    try:
        result = commit_directory(session, storage, repo, repos.git(repo), actor, out_dir,
                                  f"{summary}\n\n{description}")
    except BaseException:
        session.rollback()
        _delete(session, storage, actor, ref)
        raise
    return result.oid


def _delete(session: Session, storage: HubStorage, actor: Actor, ref: RepoRef) -> None:
    # Deleting needs admin rights on the repo; an org member with write access may create but not
    # delete, so the clean-up acts as an administrator.
    admin = Actor(user_id=actor.user_id, name=actor.name, is_admin=True, role="write", token_name=actor.token_name)
    Repos(session, storage).delete(admin, ref)
    session.commit()


def discard_partial_output(session: Session, storage: HubStorage, job: Job, started_at: datetime | None) -> bool:
    """Delete the output repo of an interrupted job if the job created it and never committed to it."""
    try:
        spec = parse_spec(job.kind, job.spec)
    except ValueError:
        return False
    if spec.output_repo is None or started_at is None:
        return False
    ref = RepoRef.parse(RepoType.MODEL, spec.output_repo)
    repo = Repos(session, storage).find(ref)
    if repo is None or published_by(storage, repo, job.id) is not None:
        return False
    created = repo.created_at if repo.created_at.tzinfo else repo.created_at.replace(tzinfo=UTC)
    started = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    git = storage.git(repo.id)
    head = git.ref_target(f"refs/heads/{MAIN}")
    if created < started or head is None or git.count_commits(head) > 1:
        return False
    _delete(session, storage, owner_actor(session, job), ref)
    return True
