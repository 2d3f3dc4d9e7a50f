"""Repo types, repo ids, revisions and in-repo paths: parsing and validation (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from commons.errors import InvalidRequest


class RepoType(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"

    @property
    def url_prefix(self) -> str:
        """Prefix of file and git URLs: none for models, `datasets/` for datasets."""
        return "" if self is RepoType.MODEL else f"{self.value}s/"

    @property
    def plural(self) -> str:
        return f"{self.value}s"

    @classmethod
    def from_plural(cls, plural: str) -> RepoType:
        for t in cls:
            if t.plural == plural:
                return t
        raise InvalidRequest(f"Invalid repo type: {plural}")


# Same rules as the Hub: letters, digits, '-', '_', '.'; no '--' or '..'; not ending in '.git' or '.'.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
MAX_PATH = 1000


def validate_name(name: str, what: str = "repo name") -> str:
    if not _NAME.match(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise InvalidRequest(
            f"Invalid {what} {name!r}: use letters, digits, '-', '_' and '.', start and end with a letter or "
            "digit, at most 96 characters, no '--' or '..', not ending in '.git'."
        )
    return name


@dataclass(frozen=True)
class RepoRef:
    """A repo as named by a client: type plus `namespace/name`."""

    type: RepoType
    namespace: str
    name: str

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, type_: RepoType, repo_id: str) -> RepoRef:
        parts = repo_id.split("/")
        if len(parts) != 2:
            raise InvalidRequest(f"Repo id must be 'namespace/name', got {repo_id!r}")
        return cls(type_, validate_name(parts[0], "namespace"), validate_name(parts[1]))


_BAD_SEGMENTS = {"", ".", ".."}


def validate_path(path: str) -> str:
    """A file path inside a repo: relative, '/'-separated, no traversal, no `.git/`."""
    if not path or len(path.encode()) > MAX_PATH:
        raise InvalidRequest(f"Invalid path {path[:100]!r}: empty or longer than {MAX_PATH} bytes")
    if "\\" in path or "\0" in path or path.startswith("/"):
        raise InvalidRequest(f"Invalid path {path!r}: backslash, NUL and absolute paths are not allowed")
    segments = path.split("/")
    if any(s in _BAD_SEGMENTS for s in segments):
        raise InvalidRequest(f"Invalid path {path!r}: empty, '.' and '..' segments are not allowed")
    if segments[0] == ".git" or any(s == ".git" for s in segments):
        raise InvalidRequest(f"Invalid path {path!r}: '.git' is reserved")
    if any(ord(c) < 0x20 for c in path):
        raise InvalidRequest(f"Invalid path {path!r}: control characters are not allowed")
    return path


_BRANCH_BAD = re.compile(r"(^[./-])|(\.\.)|([\x00-\x20~^:?*\[\\])|(@\{)|(\.lock$)|(/$)|(\.$)|(//)")


def validate_ref_name(name: str, what: str = "branch") -> str:
    """Branch and tag names follow git's check-ref-format rules (plus no 'refs/' prefix)."""
    if not name or len(name) > 200 or _BRANCH_BAD.search(name) or name.startswith("refs/"):
        raise InvalidRequest(f"Invalid {what} name {name!r}")
    return name


def is_commit_sha(rev: str) -> bool:
    return len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)


PR_REF = re.compile(r"^refs/pr/(\d+)$")
