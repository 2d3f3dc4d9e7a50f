"""The vocabulary of failures users see. No HTTP here: `api/errors.py` maps these to responses."""

from __future__ import annotations


class CommonsError(Exception):
    """Base of every error Commons raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(CommonsError):
    """Malformed input: a bad repo id, path, revision name or request body."""


class Unauthorized(CommonsError):
    """A credential was sent but is not valid (unknown, revoked, expired token)."""


class PermissionDenied(CommonsError):
    """The caller is known but may not do this (e.g. write to someone else's repo)."""


class RepoNotFound(CommonsError):
    """The repo does not exist, or the caller may not know that it does (private)."""

    def __init__(self, repo_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Repository not found: {repo_id}")
        self.repo_id = repo_id


class GatedRepo(CommonsError):
    """The repo is gated and the caller has not been granted access to its files."""

    def __init__(self, repo_id: str) -> None:
        super().__init__(f"Access to repo {repo_id} is restricted. You must have access to it and be authenticated.")
        self.repo_id = repo_id


class RepoDisabled(CommonsError):
    """The repo was disabled by an administrator."""

    def __init__(self, repo_id: str) -> None:
        super().__init__("Access to this resource is disabled.")
        self.repo_id = repo_id


class RevisionNotFound(CommonsError):
    """A branch, tag, commit or PR ref does not exist in the repo."""

    def __init__(self, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision}")
        self.revision = revision


class EntryNotFound(CommonsError):
    """A file or folder does not exist at an existing revision."""

    def __init__(self, path: str, message: str | None = None) -> None:
        super().__init__(message or f"Entry not found: {path}")
        self.path = path


class Conflict(CommonsError):
    """The thing to create already exists (repo, branch, tag)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class PreconditionFailed(CommonsError):
    """A compare-and-swap lost: `parentCommit` is not the head of the branch any more."""


class IntegrityError(CommonsError):
    """Uploaded bytes do not match the declared sha256 or size, or a referenced object is missing."""


class PolicyBlocked(CommonsError):
    """An organisation's policy refuses this change (e.g. a license conflict under a blocking policy)."""


class PayloadTooLarge(CommonsError):
    """A file or request exceeds the configured maximum size."""
