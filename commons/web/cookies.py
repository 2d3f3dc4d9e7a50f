"""The cookies of the web UI: the session cookie, and the signed double-submit token of anonymous forms.

Signed-out forms (sign in, sign up) have no session to hold a CSRF token. They use a signed
double-submit token instead: a random nonce in an HTTP-only cookie, and in the form a signature of
that nonce made with the server's key. A cross-site page can neither read the cookie nor sign a
nonce of its own, so it cannot forge a form that passes.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import Request, Response

from commons.accounts import sessions
from commons.services import Services
from commons.web.deps import is_https

FORM_COOKIE = "commons_form"
FORM_TTL = 2 * 3600
_ACTION = "web-form"


def set_session_cookie(response: Response, request: Request, services: Services, secret: str) -> None:
    response.set_cookie(sessions.COOKIE, secret, max_age=int(sessions.LIFETIME.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=is_https(request, services))


def clear_session_cookie(response: Response, request: Request, services: Services) -> None:
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax",
                           secure=is_https(request, services))


def form_nonce(request: Request) -> tuple[str, bool]:
    """The browser's form nonce, and whether it is new (then the response must set the cookie)."""
    nonce = request.cookies.get(FORM_COOKIE)
    if nonce and 16 <= len(nonce) <= 64:
        return nonce, False
    return secrets.token_urlsafe(24), True


def form_token(services: Services, nonce: str) -> str:
    """The hidden-field value for an anonymous form: `expiry.signature` of the cookie's nonce."""
    query = parse_qs(services.signer.sign(_ACTION, nonce, 0, FORM_TTL))
    return f"{query['exp'][0]}.{query['sig'][0]}"


def form_token_ok(request: Request, services: Services, given: str) -> bool:
    nonce = request.cookies.get(FORM_COOKIE)
    exp, _, sig = given.partition(".")
    return bool(nonce) and services.signer.verify(_ACTION, nonce or "", "0", exp, sig)


def set_form_cookie(response: Response, request: Request, services: Services, nonce: str) -> None:
    response.set_cookie(FORM_COOKIE, nonce, max_age=FORM_TTL, path="/", httponly=True, samesite="lax",
                        secure=is_https(request, services))
