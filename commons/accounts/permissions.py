"""Who may read and write a repo: pure functions over the caller and the repo's flags."""

from __future__ import annotations

from dataclasses import dataclass

from commons.accounts.actors import Actor


@dataclass(frozen=True)
class RepoAccess:
    """The facts about a repo that access depends on."""

    namespace: str
    private: bool
    gated: str  # "none" | "auto" | "manual"
    granted: bool = False  # the caller's gated-access request was accepted


def owns(actor: Actor | None, namespace: str) -> bool:
    """Write-level membership of the namespace (the user's own; organisations come with accounts)."""
    return actor is not None and (actor.is_admin or actor.name == namespace)


def can_see(actor: Actor | None, repo: RepoAccess) -> bool:
    """May the caller know the repo exists (metadata, listings)?"""
    return not repo.private or owns(actor, repo.namespace)


def can_read_files(actor: Actor | None, repo: RepoAccess) -> bool:
    if not can_see(actor, repo):
        return False
    if repo.gated == "none":
        return True
    return owns(actor, repo.namespace) or (actor is not None and repo.granted)


def can_write(actor: Actor | None, repo: RepoAccess) -> bool:
    return actor is not None and actor.can_write and owns(actor, repo.namespace)


def can_create_in(actor: Actor | None, namespace: str) -> bool:
    return actor is not None and actor.can_write and owns(actor, namespace)
