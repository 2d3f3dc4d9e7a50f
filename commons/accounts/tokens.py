"""Access tokens: shown once, stored as sha256, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import Token, User
from commons.errors import InvalidRequest, Unauthorized

PREFIX = "cm_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str, role: str, expires_at: datetime | None = None) -> str:
    """Create a token for `user`; returns the secret, which is never stored."""
    if role not in ("read", "write"):
        raise InvalidRequest(f"Token role must be 'read' or 'write', got {role!r}")
    secret = PREFIX + secrets.token_urlsafe(30)
    session.add(
        Token(user_id=user.id, name=name, role=role, digest=_digest(secret), prefix=secret[:8], expires_at=expires_at)
    )
    session.flush()
    return secret


def authenticate(session: Session, secret: str) -> Actor:
    """The actor a token stands for. Raises Unauthorized for unknown, revoked or expired tokens."""
    token = session.scalar(select(Token).where(Token.digest == _digest(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized("Invalid credentials in Authorization header")
    now = datetime.now(UTC)
    expires = token.expires_at
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) < now:
        raise Unauthorized("Invalid credentials in Authorization header")
    user = token.user
    if user.disabled:
        raise Unauthorized("Invalid credentials in Authorization header")
    return Actor(user_id=user.id, name=user.name, is_admin=user.is_admin, role=token.role, token_name=token.name)


def revoke_token(session: Session, user: User, name: str) -> int:
    count = 0
    for token in user.tokens:
        if token.name == name and token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            count += 1
    return count
