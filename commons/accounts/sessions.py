"""Browser sessions: a random cookie secret (stored as sha256) and a per-session CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.tokens import actor_for
from commons.db.models import User, WebSession

COOKIE = "commons_session"
LIFETIME = timedelta(days=14)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(session: Session, user: User) -> tuple[str, str]:
    """Start a session; returns (cookie secret, csrf token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(WebSession(id=_digest(secret), user_id=user.id, csrf=csrf,
                           expires_at=datetime.now(UTC) + LIFETIME))
    session.flush()
    return secret, csrf


def lookup(session: Session, secret: str) -> tuple[Actor, str] | None:
    """(actor, csrf token) of a live session; None if unknown, expired or the user is disabled."""
    row = session.get(WebSession, _digest(secret))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires < datetime.now(UTC):
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return actor_for(session, user, "write", token_name="web session", via_session=True), row.csrf


def csrf_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


def close_session(session: Session, secret: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == _digest(secret)))


def close_all(session: Session, user: User) -> None:
    """Sign a user out everywhere (password change, account disabled)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
