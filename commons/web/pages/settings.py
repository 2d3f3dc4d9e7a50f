"""Account settings: access tokens (`/settings/tokens`) and the password (`/settings/password`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from commons.accounts import sessions, tokens
from commons.accounts.actors import Actor
from commons.accounts.passwords import MIN_LENGTH, hash_password, verify_password
from commons.accounts.users import get_user
from commons.api.audit import audit
from commons.api.ratelimit import FailureLimiter
from commons.db.models import User
from commons.errors import InvalidRequest
from commons.web import cookies
from commons.web.deps import ServicesDep, SessionDep, SignedInDep, SignedInForm, client_ip
from commons.web.pageroute import PageRoute, Rerender
from commons.web.templating import render

router = APIRouter(route_class=PageRoute)
SCOPE_ROWS = 3
EXPIRY_DAYS = (7, 30, 90, 365)
NO_STORE = {"Cache-Control": "no-store"}


def _user(session: Session, actor: Actor) -> User:
    user = get_user(session, actor.name)
    if user is None:  # deleted while signed in
        raise InvalidRequest("Your account no longer exists")
    return user


@router.get("/settings")
def settings_home() -> Response:
    return RedirectResponse("/settings/tokens", status_code=303)


# ---------------------------------------------------------------- tokens
def _tokens_page(request: Request, user: User, status: int = 200, **context: Any) -> HTMLResponse:
    ordered = sorted(user.tokens, key=lambda t: t.created_at, reverse=True)
    values: dict[str, Any] = {"new_token": None, "error": None, "form": {}, **context}
    return render(request, "pages/settings_tokens.html", code=status, headers=NO_STORE, section="tokens",
                  active=[t for t in ordered if t.revoked_at is None], revoked=[t for t in ordered if t.revoked_at],
                  scope_rows=SCOPE_ROWS, expiry_days=EXPIRY_DAYS, actions=sorted(tokens.SCOPE_ACTIONS,
                  key=["read", "discuss", "write", "admin"].index), now=datetime.now(UTC), **values)


@router.get("/settings/tokens")
def tokens_page(request: Request, actor: SignedInDep, session: SessionDep) -> Response:
    return _tokens_page(request, _user(session, actor))


def _scopes(resources: list[str], chosen: dict[str, list[str]]) -> list[dict[str, Any]]:
    scopes = []
    for i, resource in enumerate(resources[:SCOPE_ROWS]):
        resource = resource.strip()
        actions = [a for a, rows in chosen.items() if str(i) in rows]
        if resource and actions:
            scopes.append({"resource": resource, "actions": actions})
        elif resource:
            raise InvalidRequest(f"Choose at least one permission for {resource}")
    if not scopes:
        raise InvalidRequest("A fine-grained token needs at least one repo or namespace")
    return scopes


@router.post("/settings/tokens")
def create_token(
    request: Request, actor: SignedInForm, session: SessionDep,
    name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "read",
    expires_in_days: Annotated[str, Form()] = "",
    scope_resource: Annotated[list[str] | None, Form()] = None,
    scope_read: Annotated[list[str] | None, Form()] = None,
    scope_discuss: Annotated[list[str] | None, Form()] = None,
    scope_write: Annotated[list[str] | None, Form()] = None,
    scope_admin: Annotated[list[str] | None, Form()] = None,
) -> Response:
    user = _user(session, actor)
    name = name.strip()
    form = {"name": name, "role": role, "expires_in_days": expires_in_days}
    try:
        expires = None
        if expires_in_days:
            if not expires_in_days.isdigit() or not 1 <= int(expires_in_days) <= 3650:
                raise InvalidRequest("Expiry must be a number of days between 1 and 3650")
            expires = datetime.now(UTC) + timedelta(days=int(expires_in_days))
        scopes = None
        if role == "fine-grained":
            chosen = {"read": scope_read or [], "discuss": scope_discuss or [], "write": scope_write or [],
                      "admin": scope_admin or []}
            scopes = _scopes(scope_resource or [], chosen)
        if any(t.name == name and t.revoked_at is None for t in user.tokens):
            raise InvalidRequest(f"You already have a token named {name!r}")
        secret = tokens.issue_token(session, user, name, role, expires, scopes)
    except InvalidRequest as exc:
        raise Rerender(_tokens_page(request, user, 400, error=exc.message, form=form)) from None
    audit(request, "token.create", f"user:{user.name}", user.name, token=name, role=role, via="web")
    session.refresh(user)
    # Shown in this response only: the secret is not stored, and the page is never cached.
    return _tokens_page(request, user, 201, new_token=secret, new_token_name=name)


@router.post("/settings/tokens/revoke")
def revoke_token(request: Request, actor: SignedInForm, session: SessionDep,
                 name: Annotated[str, Form()] = "") -> Response:
    user = _user(session, actor)
    if not tokens.revoke_token(session, user, name):
        raise InvalidRequest(f"No active token named {name!r}")
    audit(request, "token.revoke", f"user:{user.name}", user.name, token=name, via="web")
    return RedirectResponse("/settings/tokens", status_code=303)


# ---------------------------------------------------------------- password
def _password_page(request: Request, status: int = 200, error: str | None = None, changed: bool = False
                   ) -> HTMLResponse:
    return render(request, "pages/settings_password.html", code=status, section="password", error=error,
                  changed=changed, min_length=MIN_LENGTH)


@router.get("/settings/password")
def password_page(request: Request, actor: SignedInDep, changed: str | None = None) -> Response:
    return _password_page(request, changed=changed == "1")


@router.post("/settings/password")
def change_password(
    request: Request, actor: SignedInForm, session: SessionDep, services: ServicesDep,
    current: Annotated[str, Form()] = "", new: Annotated[str, Form()] = "", confirm: Annotated[str, Form()] = "",
) -> Response:
    user = _user(session, actor)
    limiter: FailureLimiter = request.app.state.login_limiter
    ip = client_ip(request)
    limiter.check(ip)
    if not verify_password(user.password_hash, current):
        limiter.fail(ip)
        raise Rerender(_password_page(request, 400, "Your current password is not right."))
    try:
        if new != confirm:
            raise InvalidRequest("The two new passwords differ")
        user.password_hash = hash_password(new)
    except InvalidRequest as exc:
        raise Rerender(_password_page(request, 400, exc.message)) from None
    # Every session ends, this one too; the browser that changed the password gets a fresh one.
    sessions.close_all(session, user)
    secret, _ = sessions.open_session(session, user)
    audit(request, "user.password", f"user:{user.name}", user.name, via="web")
    response = RedirectResponse("/settings/password?changed=1", status_code=303)
    cookies.set_session_cookie(response, request, services, secret)
    return response
