"""Who is calling: a user through a token or a browser session, or nobody."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """A role in a namespace, weakest first (the Hub's organisation roles)."""

    READ = "read"
    CONTRIBUTOR = "contributor"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.READ: 1, Role.CONTRIBUTOR: 2, Role.WRITE: 3, Role.ADMIN: 4}


@dataclass(frozen=True)
class Scope:
    """One grant of a fine-grained token: `actions` on a repo (`model:ns/name`) or a namespace (`ns`)."""

    resource: str
    actions: frozenset[str]


@dataclass(frozen=True)
class Actor:
    """An authenticated caller.

    `role` is what the credential allows (`read`, `write` or `fine-grained`); `orgs` maps each
    organisation the user belongs to to the user's role there; `scopes` limits a fine-grained token.
    """

    user_id: int
    name: str
    is_admin: bool
    role: str
    token_name: str | None = None
    orgs: dict[str, Role] = field(default_factory=dict, hash=False, compare=False)
    scopes: tuple[Scope, ...] | None = None
    via_session: bool = False

    @property
    def can_write(self) -> bool:
        return self.role in ("write", "fine-grained")


ANONYMOUS: Actor | None = None
