"""Tree listings and paths-info."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from commons.api.deps import ActorDep, ReposDep, ServicesDep, base_url
from commons.api.hf.schemas import tree_entry
from commons.api.routing import segment
from commons.errors import EntryNotFound
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need
from commons.hub.trees import file_info, list_files, with_last_commits

router = APIRouter()

EXPAND_PAGE = 50


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _tree(
    request: Request, response: Response, repo_type: str, namespace: str, name: str, revision: str, path: str,
    actor: ActorDep, repos: ReposDep, services: ServicesDep,
) -> list[dict[str, Any]]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    repo = repos.get(actor, ref, Need.SEE)
    git = repos.git(repo)
    sha = git.resolve(segment(revision))
    params = request.query_params
    recursive = _truthy(params.get("recursive"))
    expand = _truthy(params.get("expand"))
    path = segment(path).strip("/")
    entries = list_files(git, sha, path, recursive)
    page = EXPAND_PAGE if expand else services.settings.page_size
    cursor = int(params.get("cursor", "0") or 0)
    chunk = entries[cursor : cursor + page]
    if expand:
        chunk = with_last_commits(git, sha, chunk)
    if cursor + page < len(entries):
        query = [(k, v) for k, v in params.multi_items() if k != "cursor"] + [("cursor", str(cursor + page))]
        url = f"{base_url(request, services)}{request.url.path}?{urlencode(query)}"
        response.headers["Link"] = f'<{url}>; rel="next"'
    return [tree_entry(e) for e in chunk]


@router.get("/api/{repo_type}/{namespace}/{name}/tree/{revision}")
def tree_root(
    request: Request, response: Response, repo_type: str, namespace: str, name: str, revision: str,
    actor: ActorDep, repos: ReposDep, services: ServicesDep,
) -> list[dict[str, Any]]:
    return _tree(request, response, repo_type, namespace, name, revision, "", actor, repos, services)


@router.get("/api/{repo_type}/{namespace}/{name}/tree/{revision}/{path:path}")
def tree_path(
    request: Request, response: Response, repo_type: str, namespace: str, name: str, revision: str, path: str,
    actor: ActorDep, repos: ReposDep, services: ServicesDep,
) -> list[dict[str, Any]]:
    return _tree(request, response, repo_type, namespace, name, revision, path, actor, repos, services)


@router.post("/api/{repo_type}/{namespace}/{name}/paths-info/{revision}")
async def paths_info(
    request: Request, repo_type: str, namespace: str, name: str, revision: str, actor: ActorDep, repos: ReposDep,
) -> list[dict[str, Any]]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    repo = repos.get(actor, ref, Need.SEE)
    git = repos.git(repo)
    sha = git.resolve(segment(revision))
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        paths = body.get("paths", []) if isinstance(body, dict) else []
        expand = bool(body.get("expand")) if isinstance(body, dict) else False
    else:
        form = await request.form()
        paths = [str(p) for p in form.getlist("paths")]
        expand = _truthy(str(form.get("expand", "")))
    infos = []
    for p in paths:
        try:
            info = file_info(git, sha, str(p).strip("/"))
        except (EntryNotFound, KeyError, ValueError):
            info = None
        if info is not None:
            infos.append(info)
    if expand:
        infos = with_last_commits(git, sha, infos)
    return [tree_entry(i) for i in infos]
