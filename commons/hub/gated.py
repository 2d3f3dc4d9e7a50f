"""Access requests to gated repos: ask (auto-approved or pending), accept, reject, grant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import AccessGrant, Repo, User
from commons.errors import Conflict, InvalidRequest

STATUSES = ("pending", "accepted", "rejected")


def ask(session: Session, repo: Repo, actor: Actor, fields: dict[str, Any]) -> AccessGrant:
    """A user asks for access; `auto` gating accepts at once, `manual` leaves it pending."""
    if repo.gated == "none":
        raise InvalidRequest("This repo is not gated: its files are open to everyone who can see it")
    grant = session.scalar(select(AccessGrant).where(AccessGrant.repo_id == repo.id,
                                                     AccessGrant.user_id == actor.user_id))
    status = "accepted" if repo.gated == "auto" else "pending"
    if grant is None:
        grant = AccessGrant(repo_id=repo.id, user_id=actor.user_id, status=status, fields=fields)
        session.add(grant)
    elif grant.status == "accepted":
        return grant
    else:
        grant.status, grant.fields, grant.updated_at = status, fields, datetime.now(UTC)
    session.flush()
    return grant


def listing(session: Session, repo: Repo, status: str) -> list[AccessGrant]:
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {STATUSES}")
    return list(session.scalars(select(AccessGrant).where(AccessGrant.repo_id == repo.id,
                                                          AccessGrant.status == status)
                                .order_by(AccessGrant.created_at)))


def handle(session: Session, repo: Repo, decider: Actor, user: User, status: str) -> AccessGrant:
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {STATUSES}")
    grant = session.scalar(select(AccessGrant).where(AccessGrant.repo_id == repo.id,
                                                     AccessGrant.user_id == user.id))
    if grant is None:
        raise InvalidRequest(f"{user.name} has not asked for access")
    grant.status, grant.decided_by, grant.updated_at = status, decider.name, datetime.now(UTC)
    return grant


def grant_access(session: Session, repo: Repo, decider: Actor, user: User) -> AccessGrant:
    grant = session.scalar(select(AccessGrant).where(AccessGrant.repo_id == repo.id,
                                                     AccessGrant.user_id == user.id))
    if grant is not None and grant.status == "accepted":
        raise Conflict(f"{user.name} already has access")
    if grant is None:
        grant = AccessGrant(repo_id=repo.id, user_id=user.id, status="accepted", fields={})
        session.add(grant)
    grant.status, grant.decided_by, grant.updated_at = "accepted", decider.name, datetime.now(UTC)
    session.flush()
    return grant
