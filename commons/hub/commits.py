"""Commits: verify every object, write git objects, then move the ref by compare-and-swap.

A commit is applied in one step (see docs/architecture.md):
1. each added file is already a verified temp file (sha256, git blob id and size computed while it
   arrived); LFS references must name an object this repo holds;
2. objects are written: small files into git, large ones into the blob store plus an LFS pointer;
3. under the repo lock the branch is read, `parentCommit` compared, the tree built, the commit
   written and the ref moved;
4. the metadata index is updated in the caller's transaction.
A crash anywhere leaves the branch at its previous commit; at worst an orphan object remains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import LfsObject, Repo, RepoObject
from commons.errors import EntryNotFound, IntegrityError, InvalidRequest
from commons.hub import discussions, scans
from commons.hub.attributes import DEFAULT_GITATTRIBUTES, LfsRules, with_tracked_paths
from commons.hub.gitrepo import MAIN, Change, GitRepo
from commons.hub.ids import validate_path
from commons.hub.pointers import LfsPointer
from commons.hub.storage import HubStorage
from commons.hub.trees import file_info


@dataclass(frozen=True)
class AddFile:
    """A file whose bytes arrived with the commit, already in a temp file with known digests."""

    path: str
    source: Path
    sha256: str
    git_sha1: str
    size: int


@dataclass(frozen=True)
class AddLfs:
    """A file whose bytes were uploaded beforehand through LFS (or copied inside the repo)."""

    path: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | AddLfs | DeleteFile | DeleteFolder


@dataclass(frozen=True)
class CommitRequest:
    revision: str
    operations: list[Operation]
    summary: str
    description: str = ""
    parent_commit: str | None = None
    create_pr: bool = False


@dataclass
class CommitResult:
    oid: str
    pr_num: int | None = None
    ref: str = ""
    lfs_objects: list[str] = field(default_factory=list)
    warning: str | None = None


def _message(summary: str, description: str) -> str:
    summary = summary.strip() or "Update files"
    return f"{summary}\n\n{description.strip()}\n" if description.strip() else f"{summary}\n"


def _holds(session: Session, repo: Repo, sha256: str) -> LfsObject | None:
    linked = session.scalar(select(RepoObject).where(RepoObject.repo_id == repo.id, RepoObject.sha256 == sha256))
    return session.get(LfsObject, sha256) if linked is not None else None


def link_object(session: Session, repo: Repo, sha256: str, size: int, git_sha1: str | None = None) -> None:
    obj = session.get(LfsObject, sha256)
    if obj is None:
        session.add(LfsObject(sha256=sha256, size=size, git_sha1=git_sha1))
    elif git_sha1 and obj.git_sha1 is None:
        obj.git_sha1 = git_sha1
    if session.get(RepoObject, (repo.id, sha256)) is None:
        session.add(RepoObject(repo_id=repo.id, sha256=sha256))


def apply_commit(
    session: Session, storage: HubStorage, repo: Repo, git: GitRepo, actor: Actor, req: CommitRequest
) -> CommitResult:
    """Apply `req` to `repo`. The caller commits the session after this returns."""
    for op in req.operations:
        validate_path(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
    paths = [op.path for op in req.operations if not isinstance(op, DeleteFolder)]
    if len(paths) != len(set(paths)):
        raise InvalidRequest("A commit cannot name the same path twice")

    pr_num = None
    if req.create_pr:
        base_branch = req.revision.removeprefix("refs/heads/")
        git.writable_ref(req.revision)  # must be a branch
        pr = discussions.create(
            session, repo, git, actor, req.summary or "Pull request", req.description, True, base_branch
        )
        pr_num = pr.num
        refname = discussions.pr_ref(pr.num)
    else:
        refname = git.writable_ref(req.revision)

    base = git.ref_target(refname)
    rules_text = _gitattributes(git, base, req.operations)
    rules = LfsRules(rules_text)

    # 1-2. objects: verified temp files go to git or the blob store; LFS refs must be held.
    changes: list[Change] = []
    untracked_lfs: list[str] = []
    stored: list[str] = []
    for op in req.operations:
        if isinstance(op, AddFile):
            if op.size >= storage.lfs_threshold or (op.path != ".gitattributes" and rules.tracks(op.path)):
                storage.blobs.adopt(op.source, op.sha256, op.size)
                link_object(session, repo, op.sha256, op.size, op.git_sha1)
                pointer = LfsPointer(op.sha256, op.size)
                changes.append(Change(op.path, git.create_blob(pointer.encode())))
                stored.append(op.sha256)
                if not rules.tracks(op.path):
                    untracked_lfs.append(op.path)
            else:
                changes.append(Change(op.path, git.create_blob_from_file(op.source)))
        elif isinstance(op, AddLfs):
            obj = _holds(session, repo, op.sha256)
            if obj is None or not storage.blobs.exists(op.sha256):
                raise IntegrityError(
                    f"LFS object {op.sha256} for {op.path} was not uploaded to this repo; upload it first"
                )
            if op.size is not None and op.size != obj.size:
                raise IntegrityError(f"LFS object {op.sha256}: size {op.size} does not match stored {obj.size}")
            changes.append(Change(op.path, git.create_blob(LfsPointer(op.sha256, obj.size).encode())))
            if not rules.tracks(op.path):
                untracked_lfs.append(op.path)
        elif isinstance(op, DeleteFile):
            changes.append(Change(op.path, None))
    if untracked_lfs:
        # Keep `git clone` + git-lfs honest: every pointer must be covered by a filter=lfs line.
        text = with_tracked_paths(rules_text, untracked_lfs)
        changes = [c for c in changes if c.path != ".gitattributes"]
        changes.append(Change(".gitattributes", git.create_blob(text.encode())))
    folders = [op.path for op in req.operations if isinstance(op, DeleteFolder)]

    # The link rows are committed before the ref moves, so an LFS object is never referenced unlinked.
    session.commit()

    # 3. compare-and-swap on the ref.
    with git.locked():
        expected = req.parent_commit if not req.create_pr else None
        oid = git.commit(
            refname, changes, folders, _message(req.summary, req.description), actor.name, expected_parent=expected
        )

    # 4. scan what was added, then index.
    added = [op.path for op in req.operations if isinstance(op, AddFile | AddLfs)]
    scans.scan_paths(session, storage, repo, git, oid, added)
    if refname == f"refs/heads/{MAIN}":
        from commons.hub.repos import Repos  # local import: repos imports nothing from here

        Repos(session, storage).reindex(repo, git)
    else:
        repo.last_modified = datetime.now(UTC)
    if pr_num is not None:
        pr = discussions.get(session, repo, pr_num)
        discussions.add_event(session, pr, actor, "commit", {"subject": req.summary, "oid": oid})
    elif refname.startswith("refs/pr/"):
        pr = discussions.get(session, repo, int(refname.rsplit("/", 1)[1]))
        discussions.add_event(session, pr, actor, "commit", {"subject": req.summary, "oid": oid})
    return CommitResult(oid=oid, pr_num=pr_num, ref=refname, lfs_objects=stored)


def _gitattributes(git: GitRepo, base: str | None, ops: list[Operation]) -> str:
    for op in ops:
        if isinstance(op, AddFile) and op.path == ".gitattributes":
            return op.source.read_text("utf-8", "replace")
        if isinstance(op, DeleteFile) and op.path == ".gitattributes":
            return ""
    if base is None:
        return DEFAULT_GITATTRIBUTES
    info = file_info(git, base, ".gitattributes")
    if info is None or info.lfs is not None:
        return ""
    return git.read_blob(info.oid).decode("utf-8", "replace")


def check_deletions_exist(git: GitRepo, commit: str, ops: list[Operation]) -> None:
    for op in ops:
        if isinstance(op, DeleteFile) and git.entry(commit, op.path) is None:
            raise EntryNotFound(op.path, "A file with this name doesn't exist")
