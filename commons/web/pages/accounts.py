"""Sign in (`/login`), sign out (`/logout`) and sign up (`/join`).

Signed-out forms carry a signed double-submit token (see `cookies.py`); failed sign-ins count
against the client address in `app.state.login_limiter`, and too many answer 429.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commons.accounts import sessions
from commons.accounts.orgs import namespace_exists
from commons.accounts.passwords import MIN_LENGTH, hash_password, verify_password
from commons.accounts.site import get_setting
from commons.accounts.tokens import actor_for
from commons.accounts.users import RESERVED_NAMES, create_user, get_user
from commons.api.audit import audit
from commons.api.ratelimit import FailureLimiter
from commons.errors import Conflict, InvalidRequest, PermissionDenied
from commons.hub.ids import validate_name
from commons.services import Services
from commons.web import cookies
from commons.web.deps import CsrfRejected, ServicesDep, SessionDep, ViewerDep, client_ip
from commons.web.pageroute import PageRoute, Rerender
from commons.web.templating import render
from commons.web.urls import safe_next

router = APIRouter(route_class=PageRoute)


def anonymous_form(request: Request, services: Services, template: str, code: int = 200, **context: Any
                   ) -> HTMLResponse:
    """A signed-out form, with its double-submit token (and the cookie, the first time)."""
    nonce, new = cookies.form_nonce(request)
    response = render(request, template, code=code, form_token=cookies.form_token(services, nonce),
                      headers={"Cache-Control": "no-store"}, **context)
    if new:
        cookies.set_form_cookie(response, request, services, nonce)
    return response


def _check_form_token(request: Request, services: Services, token: str) -> None:
    if not cookies.form_token_ok(request, services, token):
        raise CsrfRejected()


def _signed_in_redirect(request: Request, services: Services, secret: str, target: str) -> Response:
    response = RedirectResponse(safe_next(target), status_code=303)
    cookies.set_session_cookie(response, request, services, secret)
    response.delete_cookie(cookies.FORM_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- sign in
@router.get("/login")
def login_page(request: Request, services: ServicesDep, viewer: ViewerDep, next: str = "/") -> Response:
    if viewer.actor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return anonymous_form(request, services, "pages/login.html", next=safe_next(next), username="", error=None)


@router.post("/login")
def login(
    request: Request, services: ServicesDep, session: SessionDep,
    username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
    form_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/",
) -> Response:
    _check_form_token(request, services, form_token)
    limiter: FailureLimiter = request.app.state.login_limiter
    ip = client_ip(request)
    limiter.check(ip)  # TooManyAttempts → the 429 page
    user = get_user(session, username.strip())
    stored = user.password_hash if user is not None and not user.disabled else None
    ok = verify_password(stored, password)  # also runs for unknown names: same time either way
    if user is None or not ok:
        limiter.fail(ip)
        raise Rerender(anonymous_form(request, services, "pages/login.html", code=401, next=safe_next(next),
                                      username=username, error="Wrong user name or password."))
    limiter.reset(ip)
    secret, _ = sessions.open_session(session, user)
    request.state.actor = actor_for(session, user, "write", token_name="web session", via_session=True)
    audit(request, "session.login", f"user:{user.name}", user.name)
    return _signed_in_redirect(request, services, secret, next)


# ---------------------------------------------------------------- sign out
@router.get("/logout")
def logout_page(request: Request, viewer: ViewerDep) -> Response:
    if viewer.actor is None:
        return RedirectResponse("/", status_code=303)
    return render(request, "pages/logout.html")


@router.post("/logout")
def logout(request: Request, services: ServicesDep, session: SessionDep, viewer: ViewerDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    if viewer.actor is None or not sessions.csrf_ok(viewer.csrf, csrf):
        raise CsrfRejected()
    sessions.close_session(session, viewer.secret)
    audit(request, "session.logout", f"user:{viewer.actor.name}", viewer.actor.name)
    response = RedirectResponse("/", status_code=303)
    cookies.clear_session_cookie(response, request, services)
    return response


# ---------------------------------------------------------------- sign up
def _join_form(request: Request, services: Services, status: int = 200, error: str | None = None,
               **values: str) -> HTMLResponse:
    fields = {"username": "", "fullname": "", "email": "", **values}
    return anonymous_form(request, services, "pages/join.html", code=status, error=error,
                          min_length=MIN_LENGTH, **fields)


@router.get("/join")
def join_page(request: Request, services: ServicesDep, session: SessionDep, viewer: ViewerDep) -> Response:
    if not get_setting(session, "signup_enabled"):
        return render(request, "pages/join_closed.html", code=403)
    if viewer.actor is not None:
        return RedirectResponse("/", status_code=303)
    return _join_form(request, services)


@router.post("/join")
def join(
    request: Request, services: ServicesDep, session: SessionDep,
    username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "", fullname: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "", form_token: Annotated[str, Form()] = "",
) -> Response:
    _check_form_token(request, services, form_token)
    if not get_setting(session, "signup_enabled"):
        raise PermissionDenied("Sign-up is disabled on this hub: ask an administrator for an account.")
    username, fullname, email = username.strip(), fullname.strip(), email.strip()
    values = {"username": username, "fullname": fullname, "email": email}
    try:
        validate_name(username, "user name")
        if username.lower() in RESERVED_NAMES:
            raise InvalidRequest(f"The name {username!r} is reserved")
        if password != confirm:
            raise InvalidRequest("The two passwords differ")
        if email and ("@" not in email or len(email) > 320):
            raise InvalidRequest("That e-mail address does not look right")
        if namespace_exists(session, username):
            raise Conflict(f"The name {username!r} is taken")
        password_hash = hash_password(password)
        user = create_user(session, username, fullname=fullname[:200], email=email or None)
    except (InvalidRequest, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        raise Rerender(_join_form(request, services, status, exc.message, **values)) from None
    user.password_hash = password_hash
    secret, _ = sessions.open_session(session, user)
    request.state.actor = actor_for(session, user, "write", token_name="web session", via_session=True)
    audit(request, "user.create", f"user:{user.name}", user.name, via="web")
    return _signed_in_redirect(request, services, secret, "/")
