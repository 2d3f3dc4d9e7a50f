"""Gated repos: the Hub's access-request API (`list_pending_access_requests`, `accept_access_request`, ...)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from commons.accounts.users import get_user
from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep
from commons.api.hf.schemas import iso
from commons.db.models import AccessGrant
from commons.errors import InvalidRequest, Unauthorized
from commons.hub import gated
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need

router = APIRouter()
PREFIX = "/api/{repo_type}/{namespace}/{name}/user-access-request"


def _ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    return RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")


def _json(grant: AccessGrant) -> dict[str, Any]:
    created = grant.created_at if grant.created_at.tzinfo else grant.created_at.replace(tzinfo=UTC)
    return {
        "requestId": str(grant.id),
        "user": {"user": grant.user.name, "fullname": grant.user.fullname, "email": grant.user.email},
        "status": grant.status,
        "timestamp": iso(created),
        "fields": grant.fields or None,
    }


@router.post(PREFIX)
def ask_access(request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
               body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    """Ask for access to a gated repo, with the form fields the card's `extra_gated_fields` asks for."""
    if actor is None:
        raise Unauthorized("Sign in to ask for access")
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    fields = {str(k): v for k, v in (body or {}).get("fields", {}).items()} if body else {}
    wanted = (repo.card_data or {}).get("extra_gated_fields") or {}
    missing = [k for k in wanted if k not in fields] if isinstance(wanted, dict) else []
    if missing:
        raise InvalidRequest(f"Missing fields: {', '.join(missing)}")
    grant = gated.ask(repos.session, repo, actor, fields)
    audit(request, "gate.ask", f"{repo.type}:{repo.repo_id}", repo.namespace, status=grant.status)
    return {"status": grant.status}


@router.get(PREFIX + "/{status}")
def list_requests(repo_type: str, namespace: str, name: str, status: str, actor: ActorDep, repos: ReposDep
                  ) -> list[dict[str, Any]]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.ADMIN)
    return [_json(g) for g in gated.listing(repos.session, repo, status)]


@router.post(PREFIX + "/handle")
def handle_request(request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
                   body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.ADMIN)
    assert actor is not None
    user = _find_user(repos, body)
    grant = gated.handle(repos.session, repo, actor, user, str(body.get("status", "")))
    audit(request, "gate.handle", f"{repo.type}:{repo.repo_id}", repo.namespace, user=user.name,
          status=grant.status, reason=body.get("rejectionReason"))
    return {}


@router.post(PREFIX + "/grant")
def grant(request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
          body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.ADMIN)
    assert actor is not None
    user = _find_user(repos, body)
    gated.grant_access(repos.session, repo, actor, user)
    audit(request, "gate.grant", f"{repo.type}:{repo.repo_id}", repo.namespace, user=user.name)
    return {}


def _find_user(repos: Any, body: dict[str, Any]) -> Any:
    if body.get("user"):
        user = get_user(repos.session, str(body["user"]))
    elif body.get("requestId"):
        grant = repos.session.get(AccessGrant, int(body["requestId"]))
        user = grant.user if grant is not None else None
    else:
        raise InvalidRequest("Name the 'user' or the 'requestId'")
    if user is None:
        raise InvalidRequest("Unknown user or request")
    return user
