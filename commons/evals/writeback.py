"""The `eval` publisher: write an evaluation's results back to the evaluated model repo.

One commit on main with `.eval_results/<task>.yaml|json` and `model-index` merged into README.md,
when the job's owner may write to the repo; otherwise the same commit as a pull request (anyone
who may open discussions there may propose results; the repo's writers decide). Either way the
scores go into the results table, recording where the card got them.

The commit never clobbers a concurrent one: the README is merged from the head it was read at and
the branch moves by compare-and-swap on that head (`parent_commit`); a lost race re-reads the head
and merges again.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from commons.accounts.permissions import allowed
from commons.db.models import Job
from commons.errors import PermissionDenied, PreconditionFailed
from commons.evals import results as results_table
from commons.evals.model_index import card_with_results, model_index
from commons.hub import discussions
from commons.hub.commits import AddFile, CommitRequest, Operation, apply_commit
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.hub.storage import HubStorage
from commons.hub.trees import file_info
from commons.jobs.publish import commit_message, owner_actor
from commons.ml.specs import EvalSpec
from commons.storage.digests import file_digests

log = logging.getLogger("commons.evals")

RESULTS_FILE = "results.json"
RESULTS_DIR = ".eval_results"
CAS_ATTEMPTS = 5
MAX_CARD = 1_000_000


def _current(git: GitRepo, head: str, path: str) -> bytes | None:
    info = file_info(git, head, path)
    if info is None or info.type != "file" or info.lfs is not None or info.size > MAX_CARD:
        return None
    return git.read_blob(info.oid)


def planned_files(git: GitRepo, head: str, out_dir: Path, records: list[dict[str, Any]], model_name: str
                  ) -> tuple[dict[str, bytes], str | None]:
    """Path -> new bytes for this commit (only what changes), and a note if the card could not be merged."""
    files: dict[str, bytes] = {}
    results_dir = out_dir / RESULTS_DIR
    for path in sorted(results_dir.iterdir()) if results_dir.is_dir() else []:
        if path.is_file() and path.suffix in (".yaml", ".json"):
            files[f"{RESULTS_DIR}/{path.name}"] = path.read_bytes()
    note = None
    readme = _current(git, head, "README.md")
    try:
        card = card_with_results(readme.decode("utf-8") if readme is not None else None,
                                 model_index(records, model_name))
        files["README.md"] = card.encode("utf-8")
    except (ValueError, yaml.YAMLError) as exc:
        note = f"README.md left unchanged: its front matter could not be read ({exc})"
    changed = {p: data for p, data in files.items() if _current(git, head, p) != data}
    return changed, note


def _operations(storage: HubStorage, staging: Path, files: dict[str, bytes]) -> list[Operation]:
    ops: list[Operation] = []
    for path, data in files.items():
        tmp = staging / uuid.uuid4().hex
        tmp.write_bytes(data)
        sha256, git_sha1, size = file_digests(tmp)
        ops.append(AddFile(path, tmp, sha256, git_sha1, size))
    return ops


def publish_eval(session: Session, storage: HubStorage, job: Job, spec: EvalSpec, out_dir: Path,
                 metrics: dict[str, Any]) -> str:
    """Commit the results to the model repo (or open a PR), store them; returns the commit sha."""
    records: list[dict[str, Any]] = json.loads((out_dir / RESULTS_FILE).read_text())["tasks"]
    for record in records:
        results_table.rows_for(record)  # refuse malformed results before anything is written
    actor = owner_actor(session, job)
    repos = Repos(session, storage)
    repo = repos.get(actor, RepoRef.parse(RepoType.MODEL, spec.model.repo_id), Need.SEE)
    access = repos.access(actor, repo)
    direct = allowed(actor, Need.WRITE, access)
    if not direct and not allowed(actor, Need.DISCUSS, access):
        raise PermissionDenied(f"{actor.name} may neither write to {repo.repo_id} nor open a pull request there")
    git = repos.git(repo)
    summary, description = commit_message(job, spec, metrics)
    staging = storage.tmp_dir / f"eval-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        for _ in range(CAS_ATTEMPTS):
            head = git.resolve(MAIN)
            files, note = planned_files(git, head, out_dir, records, repo.repo_id)
            if not files:  # an interrupted job ran again: its results are already there
                sha, written_to = head, head
                break
            text = f"{description}\n\n{note}" if note else description
            request = CommitRequest(MAIN, _operations(storage, staging, files), summary, text,
                                    parent_commit=head if direct else None, create_pr=not direct)
            try:
                result = apply_commit(session, storage, repo, git, actor, request)
            except PreconditionFailed:
                session.rollback()
                log.info("job %s: %s moved while writing results; merging again", job.id, repo.repo_id)
                continue
            sha = result.oid
            written_to = sha if direct else discussions.pr_ref(result.pr_num or 0)
            if result.pr_num is not None:
                pr = discussions.get(session, repo, result.pr_num)
                discussions.change_status(session, pr, actor, "open")
            break
        else:
            raise PreconditionFailed(f"{repo.repo_id} kept moving; results not written after {CAS_ATTEMPTS} tries")
        results_table.store(session, repo, records, job.id, written_to)
        session.commit()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sha
