"""Files and folders at a revision, with LFS pointers resolved to the real object."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from commons.hub.gitrepo import CommitInfo, GitRepo, TreeEntry
from commons.hub.pointers import MAX_POINTER_SIZE, LfsPointer, parse_pointer


@dataclass(frozen=True)
class FileInfo:
    """A tree entry as clients see it. For LFS files `size` is the object's size, not the pointer's."""

    path: str
    type: str  # "file" | "directory"
    oid: str  # git object id (for LFS files: the pointer blob's id, as on the Hub)
    size: int
    lfs: LfsPointer | None = None
    pointer_size: int = 0
    last_commit: CommitInfo | None = None

    @property
    def etag(self) -> str:
        return self.lfs.sha256 if self.lfs else self.oid


def describe(git: GitRepo, entry: TreeEntry) -> FileInfo:
    if entry.type == "directory":
        return FileInfo(entry.path, "directory", entry.oid, 0)
    if entry.size <= MAX_POINTER_SIZE:
        pointer = parse_pointer(git.read_blob(entry.oid))
        if pointer is not None:
            return FileInfo(entry.path, "file", entry.oid, pointer.size, pointer, entry.size)
    return FileInfo(entry.path, "file", entry.oid, entry.size)


def file_info(git: GitRepo, commit: str, path: str) -> FileInfo | None:
    entry = git.entry(commit, path)
    return describe(git, entry) if entry is not None else None


def list_files(git: GitRepo, commit: str, path: str = "", recursive: bool = False) -> list[FileInfo]:
    return [describe(git, e) for e in git.list_tree(commit, path, recursive)]


def with_last_commits(git: GitRepo, commit: str, infos: Iterable[FileInfo]) -> list[FileInfo]:
    items = list(infos)
    found = git.last_commit_for(commit, [i.path for i in items])
    return [
        FileInfo(i.path, i.type, i.oid, i.size, i.lfs, i.pointer_size, found.get(i.path)) for i in items
    ]
