"""Who may do what with a repo: pure functions over the caller and the repo's facts.

Access is the intersection of two things: what the *user* may do (their role in the repo's
namespace: their own namespace is admin, an organisation gives its membership role, a site admin
is admin everywhere; public repos give everyone read), and what the *credential* allows (a read
token never writes; a fine-grained token only acts on the repos and namespaces it names).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from commons.accounts.actors import Actor, Role


class Action(StrEnum):
    SEE = "see"  # know that the repo exists: metadata, listings
    READ = "read"  # download files (gated repos need a grant)
    DISCUSS = "discuss"  # open discussions and pull requests, comment
    WRITE = "write"  # commit, branches, tags, merge
    ADMIN = "admin"  # settings, delete, gating decisions


@dataclass(frozen=True)
class RepoAccess:
    """The facts about a repo that access depends on."""

    namespace: str
    private: bool
    gated: str  # "none" | "auto" | "manual"
    granted: bool = False  # the caller's gated-access request was accepted
    repo_key: str = ""  # "model:ns/name", for fine-grained token scopes


def namespace_role(actor: Actor | None, namespace: str) -> Role | None:
    """The user's own role in a namespace (before the credential narrows it)."""
    if actor is None:
        return None
    if actor.is_admin or actor.name == namespace:
        return Role.ADMIN
    return actor.orgs.get(namespace)


def _credential_allows(actor: Actor, action: Action, repo: RepoAccess) -> bool:
    if action in (Action.SEE, Action.READ):
        if actor.scopes is None:
            return True
    elif actor.role == "read":
        return False
    if actor.scopes is None:
        return True
    wanted = {Action.SEE: "read", Action.READ: "read", Action.DISCUSS: "discuss", Action.WRITE: "write",
              Action.ADMIN: "admin"}[action]
    for scope in actor.scopes:
        if scope.resource in (repo.repo_key, repo.namespace) and (
            wanted in scope.actions or (wanted in ("read", "discuss") and "write" in scope.actions)
        ):
            return True
    return False


def allowed(actor: Actor | None, action: Action, repo: RepoAccess) -> bool:
    """May `actor` do `action` on the repo?"""
    role = namespace_role(actor, repo.namespace)
    if actor is not None and not _credential_allows(actor, action, repo):
        # A scoped token that does not name this repo sees public repos as anonymous does.
        if action is Action.SEE:
            return not repo.private
        return action is Action.READ and not repo.private and repo.gated == "none"
    if action is Action.SEE:
        return not repo.private or role is not None
    if action is Action.READ:
        if repo.private and role is None:
            return False
        if repo.gated == "none" or (role is not None and role.rank >= Role.READ.rank and not _public(repo)):
            return True
        # Gated: members with write access manage the repo; everyone else needs an accepted request.
        return (role is not None and role.rank >= Role.WRITE.rank) or (actor is not None and repo.granted)
    if action is Action.DISCUSS:
        if actor is None:
            return False
        if repo.private:
            return role is not None and role.rank >= Role.CONTRIBUTOR.rank
        return True
    if action is Action.WRITE:
        return role is not None and role.rank >= Role.WRITE.rank
    return role is not None and role.rank >= Role.ADMIN.rank


def _public(repo: RepoAccess) -> bool:
    return not repo.private


def can_see(actor: Actor | None, repo: RepoAccess) -> bool:
    return allowed(actor, Action.SEE, repo)


def can_read_files(actor: Actor | None, repo: RepoAccess) -> bool:
    return allowed(actor, Action.READ, repo)


def can_write(actor: Actor | None, repo: RepoAccess) -> bool:
    return allowed(actor, Action.WRITE, repo)


def can_create_in(actor: Actor | None, namespace: str) -> bool:
    """Create repos in a namespace: write role there and a credential that may write to it."""
    if actor is None or actor.role == "read":
        return False
    role = namespace_role(actor, namespace)
    if role is None or role.rank < Role.WRITE.rank:
        return False
    if actor.scopes is None:
        return True
    return any(s.resource == namespace and "write" in s.actions for s in actor.scopes)


def owns(actor: Actor | None, namespace: str) -> bool:
    """Write-level role in the namespace (the credential aside)."""
    role = namespace_role(actor, namespace)
    return role is not None and role.rank >= Role.WRITE.rank
