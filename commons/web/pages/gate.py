"""Gated repos: the "request access" page, and its form posting to the access-request flow (`gated.ask`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.api.audit import audit
from commons.db.models import AccessGrant, Repo
from commons.errors import InvalidRequest
from commons.hub import gated
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.services import Services
from commons.web.cardmeta import card_facts
from commons.web.deps import ANONYMOUS, SignedInForm
from commons.web.reporoutes import RepoViewDep, repo_route
from commons.web.templating import render
from commons.web.urls import repo_url


def grant_status(session: Session, repo: Repo, actor: Actor | None) -> str | None:
    """The viewer's access request to a gated repo: pending, accepted, rejected, or None."""
    if actor is None:
        return None
    return session.scalar(select(AccessGrant.status).where(AccessGrant.repo_id == repo.id,
                                                           AccessGrant.user_id == actor.user_id))


def gate_page(request: Request, kind: RepoType, repo_id: str) -> HTMLResponse:
    """What a viewer without access to a gated repo's files sees instead of them (403)."""
    services: Services = request.app.state.services
    viewer = getattr(request.state, "viewer", ANONYMOUS)
    with services.session() as session:
        repo = Repos(session, services.storage).find(RepoRef.parse(kind, repo_id))
        if repo is None:  # deleted meanwhile
            return render(request, "pages/error.html", code=404, title="Repository not found",
                          message=f"Repository not found: {repo_id}", status_code=404)
        status = grant_status(session, repo, viewer.actor)
        facts = card_facts(repo.card_data)
        base = repo_url(kind, repo.namespace, repo.name)
        return render(request, "pages/gate.html", code=403, repo_id=repo_id, base=base, kind=kind.value,
                      grant=status, facts=facts, gated=repo.gated, fields=list(facts.gated_fields.items()))


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@repo_route("/ask-access", methods=("POST",))
def ask_access(request: Request, view: RepoViewDep, actor: SignedInForm,
               form: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
    repo = view.repo
    wanted = list(card_facts(repo.card_data).gated_fields.items())
    fields: dict[str, str | bool] = {}
    for i, (key, kind) in enumerate(wanted):
        value = form.get(f"field_{i}", "").strip()
        if kind == "checkbox":
            if not value:
                raise InvalidRequest(f"Please tick: {key}")
            fields[key] = True
        elif not value:
            raise InvalidRequest(f"Please fill in: {key}")
        else:
            fields[key] = value[:500]
    grant = gated.ask(view.repos.session, repo, actor, fields)
    audit(request, "gate.ask", f"{repo.type}:{repo.repo_id}", repo.namespace, status=grant.status, via="web")
    return RedirectResponse(view.base, status_code=303)
