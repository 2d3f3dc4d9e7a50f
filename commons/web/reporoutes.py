"""Repo pages: one handler serves `/{ns}/{name}...` (models) and `/datasets/{ns}/{name}...` (datasets).

`repo_route` registers a handler on both routers; `routes.py` includes the dataset router first, so
`/datasets/x/y` is never read as the model `datasets/x`. `RepoViewDep` finds the repo with the
API's own access check (`Repos.get`), and knows what else the viewer may do there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import func, select

from commons.accounts.permissions import Action, RepoAccess, allowed
from commons.db.models import Discussion, Repo
from commons.hub.gitrepo import GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.web.cardmeta import CardFacts, card_facts
from commons.web.deps import ServicesDep, SessionDep, Viewer, ViewerDep
from commons.web.pageroute import PageRoute, route_kind
from commons.web.urls import repo_url

datasets_router = APIRouter(route_class=PageRoute)
models_router = APIRouter(route_class=PageRoute)

F = TypeVar("F", bound=Callable[..., Any])
API_SEGMENTS = frozenset({"api"})


def repo_route(suffix: str = "", methods: tuple[str, ...] = ("GET",)) -> Callable[[F], F]:
    def register(fn: F) -> F:
        datasets_router.add_api_route(f"/datasets/{{namespace}}/{{name}}{suffix}", fn, methods=list(methods))
        models_router.add_api_route(f"/{{namespace}}/{{name}}{suffix}", fn, methods=list(methods))
        return fn

    return register


def not_ours(segment: str) -> None:
    """`/api/...` paths that no API route took stay the API's plain JSON 404."""
    if segment in API_SEGMENTS:
        raise HTTPException(404, "Not Found")


@dataclass
class RepoView:
    """A repo the viewer may see, and what else the viewer may do with it."""

    repo: Repo
    kind: RepoType
    ref: RepoRef
    repos: Repos
    viewer: Viewer
    access: RepoAccess
    base: str
    open_discussions: int

    def may(self, need: Action) -> bool:
        return allowed(self.viewer.actor, need, self.access)

    @property
    def facts(self) -> CardFacts:
        """The card metadata of main, as indexed (what the API shows anyone who can see the repo)."""
        return card_facts(self.repo.card_data)

    @property
    def can_read(self) -> bool:
        return self.may(Need.FILES)

    @property
    def can_discuss(self) -> bool:
        return self.may(Need.DISCUSS)

    @property
    def can_write(self) -> bool:
        return self.may(Need.WRITE)

    @property
    def can_admin(self) -> bool:
        return self.may(Need.ADMIN)

    def require(self, need: Action) -> Repo:
        """The repo again, through `Repos.get`: raises exactly what the API would."""
        return self.repos.get(self.viewer.actor, self.ref, need)

    def git(self) -> GitRepo:
        return self.repos.git(self.repo)


def get_repo_view(request: Request, namespace: str, name: str, viewer: ViewerDep, session: SessionDep,
                  services: ServicesDep) -> RepoView:
    not_ours(namespace)
    kind = route_kind(request)
    ref = RepoRef.parse(kind, f"{namespace}/{name}")
    repos = Repos(session, services.storage)
    repo = repos.get(viewer.actor, ref, Need.SEE)
    count = session.scalar(select(func.count()).select_from(Discussion).where(
        Discussion.repo_id == repo.id, Discussion.status.in_(("open", "draft")))) or 0
    return RepoView(repo, kind, ref, repos, viewer, repos.access(viewer.actor, repo),
                    repo_url(kind, repo.namespace, repo.name), count)


RepoViewDep = Annotated[RepoView, Depends(get_repo_view)]
