"""Users, sign-up, organisations, tokens and site settings (`/api/commons/...`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from commons.accounts import sessions as web_sessions
from commons.accounts import tokens
from commons.accounts.actors import Actor, Role
from commons.accounts.orgs import create_org, get_org, members, remove_member, set_member
from commons.accounts.passwords import hash_password
from commons.accounts.site import get_setting, set_setting
from commons.accounts.users import create_user, get_user
from commons.api.audit import audit
from commons.api.deps import ActorDep, SessionDep
from commons.db.models import Token, User
from commons.errors import InvalidRequest, PermissionDenied, Unauthorized

router = APIRouter(prefix="/api/commons")


def _require(actor: Actor | None, write: bool = True) -> Actor:
    if actor is None:
        raise Unauthorized("Authentication required")
    if write and not actor.can_write:
        raise PermissionDenied("This needs a write token")
    if write and actor.scopes is not None:
        raise PermissionDenied("Fine-grained tokens cannot manage accounts")
    return actor


def _require_admin(actor: Actor | None) -> Actor:
    who = _require(actor)
    if not who.is_admin:
        raise PermissionDenied("Only site administrators can do this")
    return who


def _user(session: SessionDep, name: str) -> User:
    user = get_user(session, name)
    if user is None:
        raise InvalidRequest(f"No user named {name!r}")
    return user


# ---------------------------------------------------------------- users
@router.post("/users")
def sign_up(request: Request, session: SessionDep, actor: ActorDep, body: Annotated[dict[str, Any], Body()]
            ) -> dict[str, Any]:
    """Create an account. Open to anyone while sign-up is enabled; administrators can always create."""
    if not (actor is not None and actor.is_admin) and not get_setting(session, "signup_enabled"):
        raise PermissionDenied("Sign-up is disabled on this hub")
    name, password = str(body.get("name", "")), str(body.get("password", ""))
    user = create_user(session, name, email=body.get("email"), fullname=str(body.get("fullname", "")))
    user.password_hash = hash_password(password)
    audit(request, "user.create", f"user:{name}", name)
    return {"name": user.name}


@router.put("/users/{name}")
def update_user(request: Request, name: str, session: SessionDep, actor: ActorDep,
                body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Administrators disable or enable accounts and grant admin; a disabled user's tokens stop at once."""
    _require_admin(actor)
    user = _user(session, name)
    if "disabled" in body:
        user.disabled = bool(body["disabled"])
        if user.disabled:
            web_sessions.close_all(session, user)
    if "admin" in body:
        user.is_admin = bool(body["admin"])
    audit(request, "user.update", f"user:{name}", name, disabled=user.disabled, admin=user.is_admin)
    return {"name": user.name, "disabled": user.disabled, "admin": user.is_admin}


@router.put("/settings")
def update_site_settings(request: Request, session: SessionDep, actor: ActorDep,
                         body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    _require_admin(actor)
    for key, value in body.items():
        try:
            set_setting(session, key, value)
        except KeyError:
            raise InvalidRequest(f"Unknown site setting {key!r}") from None
    audit(request, "site.settings", "site", None, **body)
    return {k: get_setting(session, k) for k in body}


# ---------------------------------------------------------------- organisations
@router.post("/orgs")
def new_org(request: Request, session: SessionDep, actor: ActorDep, body: Annotated[dict[str, Any], Body()]
            ) -> dict[str, Any]:
    who = _require(actor)
    org = create_org(session, who, str(body.get("name", "")), str(body.get("fullname", "")))
    audit(request, "org.create", f"org:{org.name}", org.name)
    return {"name": org.name, "members": [{"user": u, "role": r} for u, r in members(session, org)]}


@router.get("/orgs/{org}")
def org_info(org: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    found = get_org(session, org)
    if found is None:
        raise InvalidRequest(f"No organisation named {org!r}")
    visible = actor is not None and (actor.is_admin or org in actor.orgs)
    return {"name": found.name, "fullname": found.fullname,
            "members": [{"user": u, "role": r} for u, r in members(session, found)] if visible else None}


@router.put("/orgs/{org}/members/{user}")
def put_member(request: Request, org: str, user: str, session: SessionDep, actor: ActorDep,
               body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    who = _require(actor)
    found = get_org(session, org)
    if found is None:
        raise InvalidRequest(f"No organisation named {org!r}")
    try:
        role = Role(str(body.get("role")))
    except ValueError:
        raise InvalidRequest("role must be read, contributor, write or admin") from None
    set_member(session, who, found, _user(session, user), role)
    audit(request, "org.member.set", f"org:{org}", org, user=user, role=role.value)
    return {"user": user, "role": role.value}


@router.delete("/orgs/{org}/members/{user}")
def delete_member(request: Request, org: str, user: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    who = _require(actor)
    found = get_org(session, org)
    if found is None:
        raise InvalidRequest(f"No organisation named {org!r}")
    remove_member(session, who, found, _user(session, user))
    audit(request, "org.member.remove", f"org:{org}", org, user=user)
    return {}


# ---------------------------------------------------------------- tokens
def token_json(t: Token) -> dict[str, Any]:
    def iso(dt: datetime | None) -> str | None:
        return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()

    return {"name": t.name, "role": t.role, "prefix": t.prefix, "scopes": t.scopes, "createdAt": iso(t.created_at),
            "lastUsedAt": iso(t.last_used_at), "expiresAt": iso(t.expires_at), "revoked": t.revoked_at is not None}


@router.get("/tokens")
def list_tokens(session: SessionDep, actor: ActorDep) -> list[dict[str, Any]]:
    who = _require(actor, write=False)
    return [token_json(t) for t in _user(session, who.name).tokens]


@router.post("/tokens")
def new_token(request: Request, session: SessionDep, actor: ActorDep, body: Annotated[dict[str, Any], Body()]
              ) -> dict[str, Any]:
    """Create a token; the secret is in this response only."""
    who = _require(actor)
    days = body.get("expiresInDays")
    expires = datetime.now(UTC) + timedelta(days=int(days)) if days else None
    secret = tokens.issue_token(session, _user(session, who.name), str(body.get("name", "")),
                                str(body.get("role", "read")), expires, body.get("scopes"))
    audit(request, "token.create", f"user:{who.name}", who.name, token=body.get("name"), role=body.get("role"))
    return {"token": secret, "name": body.get("name"), "role": body.get("role", "read")}


@router.delete("/tokens/{name}")
def revoke(request: Request, name: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    who = _require(actor)
    count = tokens.revoke_token(session, _user(session, who.name), name)
    if not count:
        raise InvalidRequest(f"No active token named {name!r}")
    audit(request, "token.revoke", f"user:{who.name}", who.name, token=name)
    return {"revoked": count}
