"""Repo settings for its admins: visibility, gating and its access requests, and deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from commons.accounts.users import get_user
from commons.api.audit import audit
from commons.errors import InvalidRequest
from commons.hub import gated
from commons.hub.gitrepo import MAIN
from commons.hub.repos import Need
from commons.web.deps import SignedInForm
from commons.web.reporoutes import RepoViewDep, repo_route
from commons.web.templating import render

GATING = {"none": "Not gated", "auto": "Gated, requests approved automatically",
          "manual": "Gated, requests reviewed by the repo's admins"}


def _settings_url(base: str, saved: str = "") -> str:
    return f"{base}/settings" + (f"?saved={saved}" if saved else "")


@repo_route("/settings")
def settings_page(request: Request, view: RepoViewDep, saved: str = "") -> Response:
    repo = view.require(Need.ADMIN)
    session = view.repos.session
    requests = {status: gated.listing(session, repo, status) for status in ("pending", "accepted", "rejected")}
    return render(request, "pages/repo_settings.html", view=view, repo=repo, tab="settings", rev=MAIN,
                  gating=GATING, requests=requests, saved=saved)


@repo_route("/settings/visibility", methods=("POST",))
def set_visibility(request: Request, view: RepoViewDep, actor: SignedInForm,
                   visibility: Annotated[str, Form()] = "") -> Response:
    if visibility not in ("public", "private"):
        raise InvalidRequest("Visibility must be public or private")
    repo = view.repos.update_settings(actor, view.ref, private=visibility == "private")
    audit(request, "repo.settings", f"{repo.type}:{repo.repo_id}", repo.namespace, private=repo.private,
          gated=repo.gated, via="web")
    return RedirectResponse(_settings_url(view.base, "visibility"), status_code=303)


@repo_route("/settings/gating", methods=("POST",))
def set_gating(request: Request, view: RepoViewDep, actor: SignedInForm,
               gated_mode: Annotated[str, Form()] = "") -> Response:
    if gated_mode not in GATING:
        raise InvalidRequest("Gating must be none, auto or manual")
    repo = view.repos.update_settings(actor, view.ref, gated=gated_mode)
    audit(request, "repo.settings", f"{repo.type}:{repo.repo_id}", repo.namespace, private=repo.private,
          gated=repo.gated, via="web")
    return RedirectResponse(_settings_url(view.base, "gating"), status_code=303)


@repo_route("/settings/access", methods=("POST",))
def handle_access(request: Request, view: RepoViewDep, actor: SignedInForm,
                  user: Annotated[str, Form()] = "", status: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.ADMIN)
    who = get_user(view.repos.session, user)
    if who is None:
        raise InvalidRequest(f"No user named {user!r}")
    grant = gated.handle(view.repos.session, repo, actor, who, status)
    audit(request, "gate.handle", f"{repo.type}:{repo.repo_id}", repo.namespace, user=who.name,
          status=grant.status, via="web")
    return RedirectResponse(_settings_url(view.base, "access"), status_code=303)


@repo_route("/settings/delete", methods=("POST",))
def delete_repo(request: Request, view: RepoViewDep, actor: SignedInForm,
                confirm: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.ADMIN)
    if confirm.strip() != repo.repo_id:
        raise InvalidRequest(f"To delete the repo, type its full name ({repo.repo_id}) in the box")
    target, namespace = f"{repo.type}:{repo.repo_id}", repo.namespace
    view.repos.delete(actor, view.ref)
    audit(request, "repo.delete", target, namespace, via="web")
    return RedirectResponse(f"/{namespace}", status_code=303)
