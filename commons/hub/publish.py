"""Commit a local directory to a repo in-process (imports, and later job outputs)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import Repo
from commons.hub.commits import AddFile, CommitRequest, CommitResult, DeleteFile, Operation, apply_commit
from commons.hub.gitrepo import GitRepo
from commons.hub.storage import HubStorage
from commons.hub.trees import list_files
from commons.storage.digests import file_digests


def commit_directory(
    session: Session,
    storage: HubStorage,
    repo: Repo,
    git: GitRepo,
    actor: Actor,
    folder: Path,
    message: str,
    revision: str = "main",
    delete_missing: bool = False,
) -> CommitResult:
    """Commit every file under `folder` (copied, so the folder stays as it is).

    With `delete_missing`, files at the head that are not in the folder are deleted, so the
    revision mirrors the folder exactly (except `.gitattributes`).
    """
    staging = storage.tmp_dir / f"publish-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        ops: list[Operation] = []
        present: set[str] = set()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            present.add(rel)
            copy = staging / uuid.uuid4().hex
            # A hard link when possible: large weights are not copied twice on the same filesystem.
            try:
                copy.hardlink_to(path)
            except OSError:
                shutil.copyfile(path, copy)
            sha256, git_sha1, size = file_digests(copy)
            ops.append(AddFile(rel, copy, sha256, git_sha1, size))
        if delete_missing:
            head = git.resolve(revision)
            for info in list_files(git, head, recursive=True):
                if info.type == "file" and info.path not in present and info.path != ".gitattributes":
                    ops.append(DeleteFile(info.path))
        return apply_commit(session, storage, repo, git, actor, CommitRequest(revision, ops, message))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
