"""One bare git repository per hub repo, written with pygit2 (libgit2).

Writes follow one rule: objects first, then the ref moves, under an exclusive lock and only if
the ref still points where the caller expects (compare-and-swap). libgit2 writes loose refs by
lock file and rename, so a crash at any point leaves the previous commit reachable.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, ObjectType, SortMode

from commons.errors import Conflict, EntryNotFound, InvalidRequest, PreconditionFailed, RevisionNotFound
from commons.hub.faults import pause
from commons.hub.ids import PR_REF, is_commit_sha

MAIN = "main"
_SHORT_SHA_MIN = 7


@dataclass(frozen=True)
class TreeEntry:
    path: str
    type: str  # "file" | "directory"
    oid: str
    size: int  # size of the git blob (for an LFS pointer: the pointer's size)


@dataclass(frozen=True)
class CommitInfo:
    id: str
    title: str
    message: str
    date: datetime
    author: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """A change to one path in a commit: a blob to store there, or None to delete it."""

    path: str
    blob: str | None
    executable: bool = False


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.Repository(str(path))

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(cls, path: Path, gitattributes: str, author: str, message: str = "initial commit") -> GitRepo:
        """A bare repo whose `main` holds one commit with `.gitattributes` (the Hub's shape)."""
        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        pygit2.init_repository(str(tmp), bare=True, initial_head="main")
        repo = cls(tmp)
        blob = repo.repo.create_blob(gitattributes.encode())
        builder = repo.repo.TreeBuilder()
        builder.insert(".gitattributes", blob, FileMode.BLOB)
        tree = builder.write()
        sig = signature(author)
        repo.repo.create_commit(f"refs/heads/{MAIN}", sig, sig, message, tree, [])
        # Rename into place last: a half-created repo directory is never visible under its name.
        tmp.rename(path)
        return cls(path)

    def destroy(self) -> None:
        trash = self.path.with_name(self.path.name + ".deleted")
        self.path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    # ---------------------------------------------------------------- revisions
    def resolve(self, rev: str) -> str:
        """Commit sha of a branch, tag, `refs/...` name, full or abbreviated sha."""
        candidates = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        for name in candidates:
            try:
                ref = self.repo.references[name]
            except (KeyError, pygit2.InvalidSpecError, ValueError):
                continue
            return str(ref.peel(pygit2.Commit).id)
        if is_commit_sha(rev) or (len(rev) >= _SHORT_SHA_MIN and all(c in "0123456789abcdef" for c in rev)):
            try:
                obj = self.repo.revparse_single(rev)
            except (KeyError, ValueError, pygit2.GitError):
                raise RevisionNotFound(rev) from None
            if obj.type == ObjectType.COMMIT:
                return str(obj.id)
        raise RevisionNotFound(rev)

    def ref_target(self, refname: str) -> str | None:
        try:
            return str(self.repo.references[refname].peel(pygit2.Commit).id)
        except (KeyError, pygit2.InvalidSpecError, ValueError):
            return None

    def writable_ref(self, rev: str) -> str:
        """The full ref a commit to `rev` moves: a branch or a PR ref; tags and shas are read-only."""
        if PR_REF.match(rev) or rev.startswith("refs/heads/"):
            name = rev
        elif rev.startswith("refs/"):
            raise InvalidRequest(f"Cannot commit to {rev}: only branches and refs/pr/N are writable")
        else:
            name = f"refs/heads/{rev}"
        if name in self.repo.references:
            return name
        if self.ref_target(f"refs/tags/{rev}") or is_commit_sha(rev):
            raise InvalidRequest(f"Cannot commit to {rev}: it is a tag or a commit, not a branch")
        raise RevisionNotFound(rev)

    def refs(self) -> dict[str, list[tuple[str, str, str]]]:
        """(name, full ref, target commit) for branches, tags and PRs."""
        out: dict[str, list[tuple[str, str, str]]] = {"branches": [], "tags": [], "pulls": [], "converts": []}
        for ref in self.repo.references.iterator():
            name = ref.name
            try:
                target = str(ref.peel(pygit2.Commit).id)
            except (ValueError, pygit2.GitError):
                continue
            if name.startswith("refs/heads/"):
                out["branches"].append((name.removeprefix("refs/heads/"), name, target))
            elif name.startswith("refs/tags/"):
                out["tags"].append((name.removeprefix("refs/tags/"), name, target))
            elif PR_REF.match(name):
                out["pulls"].append((name, name, target))
            elif name.startswith("refs/convert/"):
                out["converts"].append((name.removeprefix("refs/convert/"), name, target))
        for values in out.values():
            values.sort()
        return out

    # ---------------------------------------------------------------- reading
    def _tree(self, commit: str) -> pygit2.Tree:
        return self.repo[commit].peel(pygit2.Tree)

    def _object_at(self, commit: str, path: str) -> pygit2.Object | None:
        tree = self._tree(commit)
        if not path:
            return tree
        try:
            return tree[path]
        except KeyError:
            return None

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        obj = self._object_at(commit, path)
        if obj is None:
            return None
        return self._entry(path, obj)

    def _entry(self, path: str, obj: pygit2.Object) -> TreeEntry:
        if obj.type == ObjectType.TREE:
            return TreeEntry(path, "directory", str(obj.id), 0)
        _, size = self.repo.odb.read_header(obj.id)
        return TreeEntry(path, "file", str(obj.id), size)

    def list_tree(self, commit: str, path: str = "", recursive: bool = False) -> Iterator[TreeEntry]:
        """Entries under `path` (directories included), depth first, in git order."""
        obj = self._object_at(commit, path)
        if obj is None:
            raise EntryNotFound(path or "/")
        if not isinstance(obj, pygit2.Tree):
            raise EntryNotFound(path, f"{path} is a file, not a folder")
        yield from self._walk(obj, path, recursive)

    def _walk(self, tree: pygit2.Tree, prefix: str, recursive: bool) -> Iterator[TreeEntry]:
        for obj in tree:
            assert obj.name is not None
            full = f"{prefix}/{obj.name}" if prefix else obj.name
            yield self._entry(full, obj)
            if recursive and isinstance(obj, pygit2.Tree):
                yield from self._walk(obj, full, recursive)

    def read_blob(self, oid: str) -> bytes:
        return bytes(self.repo[oid].read_raw())

    def blob_size(self, oid: str) -> int:
        return int(self.repo.odb.read_header(oid)[1])

    def _commit(self, sha: str) -> pygit2.Commit:
        obj = self.repo[sha]
        if not isinstance(obj, pygit2.Commit):
            raise RevisionNotFound(sha)
        return obj

    def commit_info(self, sha: str) -> CommitInfo:
        return _commit_info(self._commit(sha))

    def log(self, start: str, skip: int = 0, limit: int = 100) -> list[CommitInfo]:
        out: list[CommitInfo] = []
        walker = self.repo.walk(start, SortMode.TOPOLOGICAL | SortMode.TIME)
        for i, commit in enumerate(walker):
            if i < skip:
                continue
            if len(out) >= limit:
                break
            out.append(_commit_info(commit))
        return out

    def count_commits(self, start: str) -> int:
        return sum(1 for _ in self.repo.walk(start, SortMode.TOPOLOGICAL))

    def last_commit_for(self, start: str, paths: list[str], max_commits: int = 2000) -> dict[str, CommitInfo]:
        """For each path, the newest commit that changed it (bounded walk of first parents)."""
        found: dict[str, CommitInfo] = {}
        pending = set(paths)
        commit = self._commit(start)
        seen = 0
        while pending and seen < max_commits:
            parent = commit.parents[0] if commit.parents else None
            for p in list(pending):
                mine = _oid_at(commit.tree, p)
                theirs = _oid_at(parent.tree, p) if parent is not None else None
                if mine != theirs:
                    found[p] = _commit_info(commit)
                    pending.discard(p)
            if parent is None:
                break
            commit = parent
            seen += 1
        return found

    def diff(self, base: str, head: str) -> str:
        return str(self._tree(base).diff_to_tree(self._tree(head)).patch or "")

    # ---------------------------------------------------------------- writing
    def create_blob(self, data: bytes) -> str:
        return str(self.repo.create_blob(data))

    def create_blob_from_file(self, path: Path) -> str:
        return str(self.repo.create_blob_fromdisk(str(path)))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive per-repo lock across threads and processes (flock on a lock file)."""
        with (self.path / "commons.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def commit(
        self,
        refname: str,
        changes: list[Change],
        deleted_folders: list[str],
        message: str,
        author: str,
        expected_parent: str | None = None,
        base: str | None = None,
    ) -> str:
        """Write a commit on `refname` and move the ref, atomically.

        `base` is the commit the changes apply to (default: the ref's current head). If
        `expected_parent` is given and the head moved away from it, nothing is written
        (PreconditionFailed). Must be called with the repo lock held.
        """
        head = self.ref_target(refname)
        if expected_parent is not None and head is not None and not head.startswith(expected_parent):
            raise PreconditionFailed(
                f"Parent commit {expected_parent} is not the head of {refname} any more (head is {head})"
            )
        start = base or head
        index = pygit2.Index()
        if start is not None:
            index.read_tree(self._tree(start))
        present = {e.path for e in index}
        for folder in deleted_folders:
            prefix = folder.rstrip("/") + "/"
            doomed = [p for p in present if p.startswith(prefix)]
            if not doomed:
                raise EntryNotFound(folder, f"A folder with this name doesn't exist: {folder}")
            for p in doomed:
                index.remove(p)
                present.discard(p)
        for change in changes:
            if change.blob is None:
                if change.path not in present:
                    raise EntryNotFound(change.path, "A file with this name doesn't exist")
                index.remove(change.path)
                present.discard(change.path)
                continue
            _check_no_file_dir_clash(change.path, present)
            mode = FileMode.BLOB_EXECUTABLE if change.executable else FileMode.BLOB
            index.add(pygit2.IndexEntry(change.path, pygit2.Oid(hex=change.blob), mode))
            present.add(change.path)
        tree = index.write_tree(self.repo)
        sig = signature(author)
        parents = [pygit2.Oid(hex=start)] if start else []
        oid = self.repo.create_commit(None, sig, sig, message, tree, parents)
        pause("before-ref-move")
        self._move_ref(refname, str(oid), head)
        pause("after-ref-move")
        return str(oid)

    def _move_ref(self, refname: str, new: str, old: str | None) -> None:
        current = self.ref_target(refname)
        if current != old:
            raise PreconditionFailed(f"{refname} moved during the commit")
        self.repo.references.create(refname, pygit2.Oid(hex=new), force=True)

    def create_ref(self, refname: str, target: str) -> None:
        if refname in self.repo.references:
            raise Conflict(f"Reference already exists: {refname}")
        self.repo.references.create(refname, pygit2.Oid(hex=target))

    def set_ref(self, refname: str, target: str) -> None:
        self.repo.references.create(refname, pygit2.Oid(hex=target), force=True)

    def delete_ref(self, refname: str) -> None:
        try:
            self.repo.references.delete(refname)
        except KeyError:
            raise RevisionNotFound(refname) from None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return ancestor == descendant or bool(
            self.repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor))
        )

    def merge_base(self, a: str, b: str) -> str | None:
        base = self.repo.merge_base(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
        return str(base) if base else None

    def merge_trees(self, base: str, ours: str, theirs: str, message: str, author: str) -> str:
        """A merge commit of `theirs` into `ours`; raises Conflict when the trees conflict."""
        index = self.repo.merge_trees(self._tree(base), self._tree(ours), self._tree(theirs))
        if index.conflicts is not None:
            paths = sorted({(c[1] or c[0] or c[2]).path for c in index.conflicts})
            raise Conflict(f"Merge conflict in: {', '.join(paths)}")
        tree = index.write_tree(self.repo)
        sig = signature(author)
        parents = [pygit2.Oid(hex=ours), pygit2.Oid(hex=theirs)]
        return str(self.repo.create_commit(None, sig, sig, message, tree, parents))


def _check_no_file_dir_clash(path: str, present: set[str]) -> None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in present:
            raise InvalidRequest(f"Cannot add {path}: {'/'.join(parts[:i])} is a file")
    prefix = path + "/"
    if any(p.startswith(prefix) for p in present):
        raise InvalidRequest(f"Cannot add {path}: a folder with this name exists")


def _oid_at(tree: pygit2.Tree, path: str) -> str | None:
    try:
        return str(tree[path].id)
    except KeyError:
        return None


def signature(author: str, when: datetime | None = None) -> pygit2.Signature:
    when = when or datetime.now(UTC)
    return pygit2.Signature(author, f"{author}@users.noreply.commons", int(when.timestamp()), 0)


def _commit_info(commit: pygit2.Commit) -> CommitInfo:
    message = commit.message
    title, _, body = message.partition("\n")
    return CommitInfo(
        id=str(commit.id),
        title=title.strip(),
        message=body.strip(),
        date=datetime.fromtimestamp(commit.commit_time, UTC),
        author=commit.author.name,
        parents=tuple(str(p) for p in commit.parent_ids),
    )
