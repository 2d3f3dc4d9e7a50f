"""User and organisation pages (`/{name}`): who they are and the repos the viewer may see."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from commons.accounts.orgs import get_org, members
from commons.accounts.tokens import memberships
from commons.accounts.users import get_user
from commons.hub.ids import RepoType
from commons.hub.repos import RepoQuery, Repos
from commons.web.deps import ServicesDep, SessionDep, ViewerDep
from commons.web.pageroute import PageRoute
from commons.web.reporoutes import not_ours
from commons.web.templating import render

router = APIRouter(route_class=PageRoute)
LIMIT = 200


@router.get("/{name}")
def profile(request: Request, name: str, viewer: ViewerDep, session: SessionDep, services: ServicesDep
            ) -> Response:
    not_ours(name)
    user = get_user(session, name)
    org = get_org(session, name) if user is None else None
    if user is None and org is None:
        return render(request, "pages/error.html", code=404, title="Not found", status_code=404,
                      message=f"There is no user or organisation named {name!r} on this hub.")
    repos = Repos(session, services.storage)
    listed = {kind: repos.list(viewer.actor, RepoQuery(type=kind, author=name, sort="lastModified", limit=LIMIT))
              for kind in (RepoType.MODEL, RepoType.DATASET)}
    actor = viewer.actor
    member_list: list[tuple[str, str]] | None = None
    orgs: list[tuple[str, str]] | None = None
    if org is not None and actor is not None and (actor.is_admin or org.name in actor.orgs):
        member_list = members(session, org)  # as the API: members are shown to members only
    if user is not None and actor is not None and (actor.is_admin or actor.name == user.name):
        orgs = sorted((o, r.value) for o, r in memberships(session, user.id).items())
    entity = user or org
    assert entity is not None
    return render(request, "pages/profile.html", entity=entity, is_org=org is not None,
                  models=listed[RepoType.MODEL], datasets=listed[RepoType.DATASET], members=member_list,
                  orgs=orgs, limit=LIMIT)
