"""Who is calling: a token (Bearer, or HTTP Basic with the token as password, as git sends it),
or a browser session cookie. A credential that is sent but invalid is an error, never anonymous."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from sqlalchemy.orm import Session

from commons.accounts import sessions, tokens
from commons.accounts.actors import Actor
from commons.api.ratelimit import FailureLimiter
from commons.errors import Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_token(request: Request) -> str | None:
    """The token in `Authorization`: `Bearer <token>`, or Basic with the token as the password.

    A Basic header with an empty password carries the token as the username (how some tools send it).
    """
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Malformed Basic credentials in Authorization header") from None
    username, _, password = decoded.partition(":")
    return password or username or None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate_request(session: Session, request: Request) -> Actor | None:
    """The caller of `request`, also kept in `request.state.actor` for error mapping and the audit log.

    Cookies count only for safe methods here: a cross-site form could otherwise make a signed-in
    browser write through the JSON API. The web UI's forms carry CSRF tokens and check them.
    """
    request.state.actor = None
    secret = request_token(request)
    actor: Actor | None = None
    if secret is not None:
        limiter: FailureLimiter = request.app.state.auth_limiter
        limiter.check(client_ip(request))
        try:
            actor = tokens.authenticate(session, secret)
        except Unauthorized:
            limiter.fail(client_ip(request))
            raise
    elif request.method in SAFE_METHODS and (cookie := request.cookies.get(sessions.COOKIE)):
        found = sessions.lookup(session, cookie)
        actor = found[0] if found else None
    request.state.actor = actor
    return actor
