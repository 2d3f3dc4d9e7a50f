"""Site administration (`/settings/site`), for site admins only: sign-up, the license policy every
namespace starts from, and accounts (disable, enable, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from commons.accounts import sessions as web_sessions
from commons.accounts.actors import Actor
from commons.accounts.site import NAMESPACE_DEFAULTS, get_setting, get_setting_for, set_setting, set_setting_for
from commons.accounts.users import get_user
from commons.api.audit import audit
from commons.db.models import User
from commons.errors import InvalidRequest, PermissionDenied
from commons.web.deps import SessionDep, SignedInDep, SignedInForm
from commons.web.pageroute import PageRoute
from commons.web.templating import render

router = APIRouter(route_class=PageRoute)
POLICY_CHOICES = {"license_mode": ("strict", "lenient"), "license_on_conflict": ("warn", "block")}
# The site-wide value of a namespace setting: what a namespace that chose nothing gets. No
# namespace is named "", so asking for it falls through to the site value.
SITE_WIDE = ""
MAX_USERS = 500


def _admin(actor: Actor) -> Actor:
    if not actor.is_admin:
        raise PermissionDenied("Only site administrators can change the site's settings")
    return actor


@router.get("/settings/site")
def site_page(request: Request, actor: SignedInDep, session: SessionDep, saved: str = "") -> Response:
    _admin(actor)
    users = list(session.scalars(select(User).order_by(User.name).limit(MAX_USERS)))
    return render(request, "pages/site_admin.html", section="site", saved=saved,
                  signup_enabled=bool(get_setting(session, "signup_enabled")),
                  policy={k: get_setting_for(session, SITE_WIDE, k) for k in NAMESPACE_DEFAULTS},
                  choices=POLICY_CHOICES, users=users, capped=len(users) >= MAX_USERS,
                  headers={"Cache-Control": "no-store"})


@router.post("/settings/site")
def save_site(request: Request, actor: SignedInForm, session: SessionDep,
              signup: Annotated[str, Form()] = "", license_mode: Annotated[str, Form()] = "",
              license_on_conflict: Annotated[str, Form()] = "") -> Response:
    _admin(actor)
    chosen = {"license_mode": license_mode, "license_on_conflict": license_on_conflict}
    for key, value in chosen.items():
        if value not in POLICY_CHOICES[key]:
            raise InvalidRequest(f"{key} must be one of {', '.join(POLICY_CHOICES[key])}")
    set_setting(session, "signup_enabled", signup == "on")
    for key, value in chosen.items():
        set_setting_for(session, None, key, value)
    audit(request, "site.settings", "site", None, signup_enabled=signup == "on", via="web", **chosen)
    return RedirectResponse("/settings/site?saved=site", status_code=303)


@router.post("/settings/site/users")
def update_user(request: Request, actor: SignedInForm, session: SessionDep,
                user: Annotated[str, Form()] = "", change: Annotated[str, Form()] = "") -> Response:
    _admin(actor)
    who = get_user(session, user)
    if who is None:
        raise InvalidRequest(f"No user named {user!r}")
    if who.name == actor.name and change in ("disable", "revoke-admin"):
        raise InvalidRequest("You cannot disable yourself or drop your own admin rights here")
    if change in ("disable", "enable"):
        who.disabled = change == "disable"
        if who.disabled:
            web_sessions.close_all(session, who)
    elif change in ("make-admin", "revoke-admin"):
        who.is_admin = change == "make-admin"
    else:
        raise InvalidRequest("Unknown change")
    audit(request, "user.update", f"user:{who.name}", who.name, disabled=who.disabled, admin=who.is_admin,
          via="web")
    return RedirectResponse("/settings/site?saved=users", status_code=303)
