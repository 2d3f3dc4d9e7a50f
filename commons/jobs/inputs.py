"""Materialise a repo at a commit into a plain directory, for a job's child process to read.

Small files are written from their git blobs; LFS files are hard-linked from the blob store when it
is on the same filesystem (no copy of multi-GB weights), copied otherwise. A hard link shares the
stored object's bytes, so the directory is for reading only; it is deleted when the job ends.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.errors import IntegrityError, RevisionNotFound
from commons.hub.ids import RepoRef, RepoType, is_commit_sha
from commons.hub.repos import Need, Repos
from commons.hub.storage import HubStorage
from commons.hub.trees import list_files
from commons.storage.base import BlobNotFound


@dataclass(frozen=True)
class Materialised:
    path: Path
    commit: str
    files: int
    bytes: int


def resolve_commit(session: Session, storage: HubStorage, actor: Actor | None, repo_type: str, repo_id: str,
                   revision: str) -> str:
    """The commit sha `revision` names in the repo, checking the actor may read its files."""
    repos = Repos(session, storage)
    repo = repos.get(actor, RepoRef.parse(RepoType(repo_type), repo_id), Need.FILES)
    git = repos.git(repo)
    sha = git.resolve(revision)
    if is_commit_sha(revision) and sha != revision:
        raise RevisionNotFound(revision)
    return sha


def materialise(session: Session, storage: HubStorage, actor: Actor | None, repo_type: str, repo_id: str,
                commit: str, dest: Path) -> Materialised:
    """Write every file of `repo_id` at `commit` under `dest` (created; must not exist)."""
    repos = Repos(session, storage)
    repo = repos.get(actor, RepoRef.parse(RepoType(repo_type), repo_id), Need.FILES)
    git = repos.git(repo)
    sha = git.resolve(commit)
    dest.mkdir(parents=True)
    count, total = 0, 0
    for info in list_files(git, sha, recursive=True):
        if info.type != "file":
            continue
        target = dest / info.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if info.lfs is None:
            target.write_bytes(git.read_blob(info.oid))
        else:
            _place_blob(storage, info.lfs.sha256, target)
        count += 1
        total += info.size
    return Materialised(dest, sha, count, total)


def _place_blob(storage: HubStorage, sha256: str, target: Path) -> None:
    local = storage.blobs.local_path(sha256)
    if local is not None:
        try:
            os.link(local, target)
            return
        except OSError:
            shutil.copyfile(local, target)
            return
    try:
        with storage.blobs.open(sha256) as src, target.open("wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
    except BlobNotFound:
        raise IntegrityError(f"LFS object {sha256} is missing from the blob store") from None
