"""Access tokens: shown once, stored as sha256, checked on every request.

Three kinds, as on the Hub: `read`, `write`, and `fine-grained` tokens limited to named repos
(`model:ns/name`, `dataset:ns/name`) or namespaces (`ns`) and to actions (`read`, `discuss`,
`write`, `admin`), optionally expiring.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor, Role, Scope
from commons.db.models import Membership, Org, Token, User
from commons.errors import InvalidRequest, Unauthorized

PREFIX = "cm_"
SCOPE_ACTIONS = frozenset({"read", "discuss", "write", "admin"})
INVALID = "Invalid credentials in Authorization header"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(raw: list[dict[str, Any]]) -> tuple[Scope, ...]:
    scopes = []
    for item in raw:
        resource = str(item.get("resource", ""))
        actions = frozenset(str(a) for a in item.get("actions", []))
        if not resource or not actions or not actions <= SCOPE_ACTIONS:
            raise InvalidRequest(f"Invalid token scope {item!r}: actions must be among {sorted(SCOPE_ACTIONS)}")
        scopes.append(Scope(resource, actions))
    return tuple(scopes)


def issue_token(
    session: Session,
    user: User,
    name: str,
    role: str,
    expires_at: datetime | None = None,
    scopes: list[dict[str, Any]] | None = None,
) -> str:
    """Create a token for `user`; returns the secret, which is never stored."""
    if role not in ("read", "write", "fine-grained"):
        raise InvalidRequest(f"Token role must be 'read', 'write' or 'fine-grained', got {role!r}")
    if (role == "fine-grained") != (scopes is not None):
        raise InvalidRequest("Fine-grained tokens need scopes, and only they have scopes")
    if scopes is not None:
        parse_scopes(scopes)
    if not name.strip() or len(name) > 100:
        raise InvalidRequest("A token needs a name of 1 to 100 characters")
    secret = PREFIX + secrets.token_urlsafe(30)
    session.add(Token(user_id=user.id, name=name, role=role, digest=_digest(secret), prefix=secret[:8],
                      expires_at=expires_at, scopes=scopes))
    session.flush()
    return secret


def memberships(session: Session, user_id: int) -> dict[str, Role]:
    rows = session.execute(
        select(Org.name, Membership.role).join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user_id)
    )
    return {name: Role(role) for name, role in rows}


def actor_for(session: Session, user: User, role: str, token_name: str | None = None,
              scopes: tuple[Scope, ...] | None = None, via_session: bool = False) -> Actor:
    return Actor(user_id=user.id, name=user.name, is_admin=user.is_admin, role=role, token_name=token_name,
                 orgs=memberships(session, user.id), scopes=scopes, via_session=via_session)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def authenticate(session: Session, secret: str) -> Actor:
    """The actor a token stands for. Raises Unauthorized for unknown, revoked or expired tokens."""
    token = session.scalar(select(Token).where(Token.digest == _digest(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized(INVALID)
    now = datetime.now(UTC)
    if token.expires_at is not None and _aware(token.expires_at) < now:
        raise Unauthorized(INVALID)
    user = token.user
    if user.disabled:
        raise Unauthorized(INVALID)
    token.last_used_at = now
    scopes = parse_scopes(token.scopes) if token.scopes is not None else None
    return actor_for(session, user, token.role, token.name, scopes)


def revoke_token(session: Session, user: User, name: str) -> int:
    count = 0
    for token in user.tokens:
        if token.name == name and token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            count += 1
    return count
