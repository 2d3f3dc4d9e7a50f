"""Who is calling: a user through a token (or a session later), or nobody."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """An authenticated caller. `role` is what the credential allows: `read` or `write`."""

    user_id: int
    name: str
    is_admin: bool
    role: str
    token_name: str | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "write"


ANONYMOUS: Actor | None = None
