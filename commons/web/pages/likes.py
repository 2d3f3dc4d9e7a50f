"""The like button on every repo page: a plain form (works without JavaScript), CSRF-checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from commons.api.audit import audit
from commons.errors import InvalidRequest
from commons.hub import likes
from commons.hub.repos import Need
from commons.web.deps import SignedInForm
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import ENV


def has_liked(view: RepoView) -> bool:
    """Whether the signed-in viewer likes this repo (the header shows the button pressed)."""
    actor = view.viewer.actor
    return actor is not None and likes.has_liked(view.repos.session, actor.user_id, view.repo)


# The repo header is shared by every repo page: it asks through a template global, so none of
# those pages needs to pass the like state.
ENV.globals["has_liked"] = has_liked


@repo_route("/like", methods=("POST",))
def like_form(request: Request, view: RepoViewDep, actor: SignedInForm,
              action: Annotated[str, Form()] = "like", back: Annotated[str, Form(alias="next")] = "") -> Response:
    if action not in ("like", "unlike"):
        raise InvalidRequest("action must be like or unlike")
    repo = view.require(Need.DISCUSS)
    change = likes.like if action == "like" else likes.unlike
    changed = change(view.repos.session, actor.user_id, repo)
    audit(request, f"repo.{action}", f"{repo.type}:{repo.repo_id}", repo.namespace, changed=changed, via="web")
    # Back to the page the button was on, if it is one of this repo's pages.
    target = back if back == view.base or back.startswith(view.base + "/") else view.base
    return RedirectResponse(target, status_code=303)
