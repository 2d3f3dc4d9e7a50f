"""Request dependencies of the web UI: the unit of work, and who is looking (the session cookie).

Pages read the browser session cookie for every method; forms that change state must also carry
the session's CSRF token (`SignedInForm`). The JSON API never accepts the cookie for writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from commons.accounts import sessions
from commons.accounts.actors import Actor

# The same unit of work as the API: it commits before the response goes out, so a redirect after a
# write never shows the old state.
from commons.api.deps import ServicesDep as ServicesDep
from commons.api.deps import SessionDep as SessionDep
from commons.api.deps import get_services as get_services
from commons.errors import CommonsError
from commons.services import Services


class CsrfRejected(CommonsError):
    """A form arrived without the token of the page that showed it (403)."""

    def __init__(self) -> None:
        super().__init__("This form has expired or did not come from this site. Go back, reload the page "
                         "and try again.")


class SignInRequired(CommonsError):
    """The page needs a signed-in user: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__("Sign in to continue")
        self.next_url = next_url


@dataclass(frozen=True)
class Viewer:
    """The person behind the browser: an actor while signed in, with the session's CSRF token."""

    actor: Actor | None = None
    csrf: str = ""
    secret: str = ""  # the session cookie, to close this very session

    @property
    def name(self) -> str | None:
        return self.actor.name if self.actor else None


ANONYMOUS = Viewer()


def get_viewer(request: Request, session: SessionDep) -> Viewer:
    """The signed-in user from the session cookie (anonymous when missing, expired or disabled)."""
    viewer = ANONYMOUS
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        found = sessions.lookup(session, secret)
        if found is not None:
            viewer = Viewer(found[0], found[1], secret)
    request.state.actor = viewer.actor  # the audit log names who acted
    request.state.viewer = viewer  # error pages still show who is signed in
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def signed_in(request: Request, viewer: ViewerDep) -> Actor:
    """A page for signed-in users only; others are sent to sign in and come back."""
    if viewer.actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer.actor


SignedInDep = Annotated[Actor, Depends(signed_in)]


def checked_form(viewer: ViewerDep, csrf: Annotated[str, Form()] = "") -> Actor:
    """A state-changing form from a signed-in user, with this session's CSRF token."""
    if viewer.actor is None or not sessions.csrf_ok(viewer.csrf, csrf):
        raise CsrfRejected()
    return viewer.actor


SignedInForm = Annotated[Actor, Depends(checked_form)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_https(request: Request, services: Services) -> bool:
    """Whether cookies must be `Secure`: the request came over https, or the hub's public URL is https."""
    public = services.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")
