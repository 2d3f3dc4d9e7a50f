"""Repos: create, delete, settings, info (with or without a revision), list and search."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Query, Request, Response

from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep, ServicesDep, base_url
from commons.api.hf.schemas import iso, repo_summary, sibling
from commons.api.routing import segment
from commons.db.models import Repo
from commons.errors import Conflict, InvalidRequest
from commons.hub import scans
from commons.hub.cards import CardError, split_front_matter
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, RepoQuery, Repos
from commons.hub.trees import file_info, list_files

router = APIRouter()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def _ref_from_body(body: dict[str, Any], actor_name: str | None) -> RepoRef:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'name' is required")
    org = body.get("organization") or actor_name
    if "/" in name:
        org, name = name.split("/", 1)
    if not org:
        raise InvalidRequest("'organization' is required for anonymous calls")
    type_ = RepoType(body.get("type") or "model")
    return RepoRef.parse(type_, f"{org}/{name}")


@router.post("/api/repos/create")
def create_repo(
    request: Request, actor: ActorDep, repos: ReposDep, services: ServicesDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    ref = _ref_from_body(body, actor.name if actor else None)
    private = body.get("visibility") == "private" if "visibility" in body else _bool(body.get("private", False))
    url = f"{base_url(request, services)}/{ref.type.url_prefix}{ref.repo_id}"
    try:
        repo = repos.create(actor, ref, private=private)
    except Conflict as exc:
        raise Conflict(exc.message, url=url) from None
    audit(request, "repo.create", f"{ref.type.value}:{ref.repo_id}", ref.namespace, private=private)
    return {"url": url, "name": repo.repo_id, "id": repo.repo_id}


@router.delete("/api/repos/delete")
def delete_repo(
    request: Request, actor: ActorDep, repos: ReposDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    ref = _ref_from_body(body, actor.name if actor else None)
    repos.delete(actor, ref)
    audit(request, "repo.delete", f"{ref.type.value}:{ref.repo_id}", ref.namespace)
    return {}


@router.put("/api/{repo_type}/{namespace}/{name}/settings")
def update_settings(
    request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    private = None
    if "visibility" in body:
        private = body["visibility"] == "private"
    elif "private" in body:
        private = _bool(body["private"])
    repo = repos.update_settings(actor, ref, private=private, gated=body.get("gated"))
    audit(request, "repo.settings", f"{ref.type.value}:{ref.repo_id}", ref.namespace, private=repo.private,
          gated=repo.gated)
    return {"private": repo.private, "gated": False if repo.gated == "none" else repo.gated}


def repo_info(repos: Repos, repo: Repo, revision: str | None, blobs: bool) -> dict[str, Any]:
    git = repos.git(repo)
    if revision is None:
        repos.reindex(repo, git)
    sha = git.resolve(revision or "main")
    out = repo_summary(repo)
    out["sha"] = sha
    files = [f for f in list_files(git, sha, recursive=True) if f.type == "file"]
    out["siblings"] = [sibling(f, blobs) for f in files]
    found = scans.repo_findings(repos.session, repo, {f.path: f.etag for f in files})
    for item in out["siblings"]:
        if item["rfilename"] in found:
            item["scan"] = scans.scan_json(found[item["rfilename"]])
    out["scan"] = {"scannedFiles": len(found),
                   "quarantined": sorted(p for p, r in found.items() if scans.is_quarantined(r))}
    if blobs:
        out["usedStorage"] = sum(f.size for f in files)
    card = file_info(git, sha, "README.md")
    card_data = None
    if card is not None and card.lfs is None and card.size < 1_000_000:
        try:
            card_data, _ = split_front_matter(git.read_blob(card.oid).decode("utf-8", "replace"))
        except CardError:
            card_data = None
    out["cardData"] = card_data
    if revision is not None:
        out["lastModified"] = iso(git.commit_info(sha).date)
    if repo.type == "dataset":
        out.pop("modelId", None)
    return out


@router.get("/api/{repo_type}/{namespace}/{name}")
def get_repo_info(
    repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
    blobs: bool = False,
) -> dict[str, Any]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    repo = repos.get(actor, ref, Need.SEE)
    return repo_info(repos, repo, None, blobs)


@router.get("/api/{repo_type}/{namespace}/{name}/revision/{revision}")
def get_repo_info_at(
    repo_type: str, namespace: str, name: str, revision: str, actor: ActorDep, repos: ReposDep,
    blobs: bool = False,
) -> dict[str, Any]:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    repo = repos.get(actor, ref, Need.SEE)
    return repo_info(repos, repo, segment(revision), blobs)


def list_repos(
    type_: RepoType, request: Request, response: Response, actor: ActorDep, repos: ReposDep,
    services: ServicesDep, search: str | None, author: str | None, filters: list[str], sort: str | None,
    direction: str | None, limit: int | None, cursor: int, full: bool,
) -> list[dict[str, Any]]:
    page = services.settings.page_size if limit is None else max(1, min(limit, services.settings.page_size))
    query = RepoQuery(
        type=type_, search=search, author=author, filters=tuple(filters), sort=sort,
        descending=direction != "1", offset=cursor, limit=page + 1,
    )
    rows = repos.list(actor, query)
    more = len(rows) > page
    rows = rows[:page]
    out = []
    for repo in rows:
        item = repo_summary(repo)
        if full:
            git = repos.git(repo)
            head = repo.head_sha or git.resolve("main")
            item["siblings"] = [sibling(f, False) for f in list_files(git, head, recursive=True) if f.type == "file"]
            item["cardData"] = repo.card_data
        out.append(item)
    if more:
        # The client fetches this URL as is: it must repeat every filter (hf-api.md §2.11).
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", str(cursor + page)))
        url = f"{base_url(request, services)}{request.url.path}?{urlencode(params)}"
        response.headers["Link"] = f'<{url}>; rel="next"'
    return out


def _list_route(type_: RepoType):  # type: ignore[no-untyped-def]
    def handler(
        request: Request, response: Response, actor: ActorDep, repos: ReposDep, services: ServicesDep,
        search: str | None = None, author: str | None = None,
        filter: Annotated[list[str] | None, Query()] = None,
        sort: str | None = None, direction: str | None = None, limit: int | None = None,
        cursor: int = 0, full: str | None = None,
    ) -> list[dict[str, Any]]:
        return list_repos(
            type_, request, response, actor, repos, services, search, author, filter or [], sort, direction,
            limit, cursor, full is not None and _bool(full),
        )

    return handler


router.add_api_route("/api/models", _list_route(RepoType.MODEL), methods=["GET"])
router.add_api_route("/api/datasets", _list_route(RepoType.DATASET), methods=["GET"])
