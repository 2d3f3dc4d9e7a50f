"""The home page, and search with filters and sorting (`/models`, `/datasets`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from commons.db.models import Repo
from commons.hub.ids import RepoType
from commons.hub.repos import RepoQuery, Repos
from commons.web.deps import ServicesDep, SessionDep, ViewerDep
from commons.web.facets import SORTS, count_values, facets_for
from commons.web.pageroute import PageRoute
from commons.web.templating import render

router = APIRouter(route_class=PageRoute)
PAGE = 20
FACET_SAMPLE = 2000  # repos whose cards feed the facet counts


def _top(repos: Repos, viewer: ViewerDep, kind: RepoType, sort: str, limit: int = 6) -> list[Repo]:
    return repos.list(viewer.actor, RepoQuery(type=kind, sort=sort, limit=limit))


@router.get("/")
def home(request: Request, viewer: ViewerDep, session: SessionDep, services: ServicesDep) -> Response:
    repos = Repos(session, services.storage)
    return render(
        request, "pages/home.html",
        liked_models=_top(repos, viewer, RepoType.MODEL, "likes"),
        recent_models=_top(repos, viewer, RepoType.MODEL, "lastModified"),
        liked_datasets=_top(repos, viewer, RepoType.DATASET, "likes"),
        recent_datasets=_top(repos, viewer, RepoType.DATASET, "lastModified"),
    )


def _search(request: Request, viewer: ViewerDep, session: SessionDep, services: ServicesDep, kind: RepoType
            ) -> Response:
    params = request.query_params
    search = (params.get("search") or "").strip()[:200]
    sort = params.get("sort") or "likes"
    if sort not in SORTS:
        sort = "likes"
    page = max(0, int(params["p"])) if (params.get("p") or "").isdigit() else 0
    facets = facets_for(kind)
    chosen = {f.param: params[f.param] for f in facets if params.get(f.param)}
    filters = tuple(f.tag(chosen[f.param]) for f in facets if f.param in chosen)
    repos = Repos(session, services.storage)
    rows = repos.list(viewer.actor, RepoQuery(type=kind, search=search or None, filters=filters, sort=sort,
                                              offset=page * PAGE, limit=PAGE + 1))
    # Facet counts come from everything the search text matches, so each filter shows what it would add.
    sample = repos.list(viewer.actor, RepoQuery(type=kind, search=search or None, filters=filters,
                                                limit=FACET_SAMPLE))
    return render(
        request, "pages/search.html", kind=kind.value, title="Models" if kind is RepoType.MODEL else "Datasets",
        results=rows[:PAGE], more=len(rows) > PAGE, page=page, search=search, sort=sort, sorts=SORTS,
        facets=facets, chosen=chosen, counts=count_values(kind, sample), total=len(sample),
        total_capped=len(sample) >= FACET_SAMPLE,
    )


@router.get("/models")
def models(request: Request, viewer: ViewerDep, session: SessionDep, services: ServicesDep) -> Response:
    return _search(request, viewer, session, services, RepoType.MODEL)


@router.get("/datasets")
def datasets(request: Request, viewer: ViewerDep, session: SessionDep, services: ServicesDep) -> Response:
    return _search(request, viewer, session, services, RepoType.DATASET)
