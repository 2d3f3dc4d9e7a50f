"""Refs, commit history, branches and tags."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Request, Response

from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep, ServicesDep, base_url
from commons.api.hf.schemas import commit_entry
from commons.api.routing import segment
from commons.errors import Conflict, InvalidRequest, PermissionDenied
from commons.hub.gitrepo import MAIN
from commons.hub.ids import RepoRef, RepoType, validate_ref_name
from commons.hub.repos import Need

router = APIRouter()


def _ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    return RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")


@router.get("/api/{repo_type}/{namespace}/{name}/refs")
def list_refs(
    request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    refs = repos.git(repo).refs()

    def shape(items: list[tuple[str, str, str]]) -> list[dict[str, str]]:
        return [{"name": n, "ref": r, "targetCommit": t} for n, r, t in items]

    out: dict[str, Any] = {
        "branches": shape(refs["branches"]),
        "tags": shape(refs["tags"]),
        "converts": shape(refs["converts"]),
    }
    if request.query_params.get("include_prs") in ("1", "true", "True"):
        out["pullRequests"] = shape(refs["pulls"])
    return out


@router.get("/api/{repo_type}/{namespace}/{name}/commits/{revision}")
def list_commits(
    request: Request, response: Response, repo_type: str, namespace: str, name: str, revision: str,
    actor: ActorDep, repos: ReposDep, services: ServicesDep, p: int = 0, limit: int | None = None,
) -> list[dict[str, Any]]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    git = repos.git(repo)
    sha = git.resolve(segment(revision))
    page = min(limit or services.settings.page_size, services.settings.page_size)
    commits = git.log(sha, skip=p * page, limit=page + 1)
    if len(commits) > page:
        commits = commits[:page]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "p"] + [("p", str(p + 1))]
        url = f"{base_url(request, services)}{request.url.path}?{urlencode(query)}"
        response.headers["Link"] = f'<{url}>; rel="next"'
    response.headers["X-Total-Count"] = str(git.count_commits(sha))
    return [commit_entry(c) for c in commits]


@router.post("/api/{repo_type}/{namespace}/{name}/branch/{branch}")
def create_branch(
    request: Request, repo_type: str, namespace: str, name: str, branch: str, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.WRITE)
    git = repos.git(repo)
    branch = validate_ref_name(segment(branch))
    start = (body or {}).get("startingPoint") or MAIN
    target = git.resolve(str(start))
    if git.ref_target(f"refs/heads/{branch}") is not None:
        raise Conflict(f"Branch {branch} already exists")
    with git.locked():
        git.create_ref(f"refs/heads/{branch}", target)
    audit(request, "branch.create", f"{repo.type}:{repo.repo_id}", repo.namespace, branch=branch, commit=target)
    return {}


@router.delete("/api/{repo_type}/{namespace}/{name}/branch/{branch}")
def delete_branch(
    request: Request, repo_type: str, namespace: str, name: str, branch: str, actor: ActorDep, repos: ReposDep
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.WRITE)
    branch = segment(branch)
    if branch == MAIN:
        raise PermissionDenied("The main branch cannot be deleted")
    git = repos.git(repo)
    with git.locked():
        git.delete_ref(f"refs/heads/{branch}")
    audit(request, "branch.delete", f"{repo.type}:{repo.repo_id}", repo.namespace, branch=branch)
    return {}


@router.post("/api/{repo_type}/{namespace}/{name}/tag/{revision}")
def create_tag(
    request: Request, repo_type: str, namespace: str, name: str, revision: str, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.WRITE)
    git = repos.git(repo)
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise InvalidRequest("'tag' is required")
    tag = validate_ref_name(tag, "tag")
    target = git.resolve(segment(revision))
    if git.ref_target(f"refs/tags/{tag}") is not None:
        raise Conflict(f"Tag {tag} already exists")
    with git.locked():
        git.create_ref(f"refs/tags/{tag}", target)
    audit(request, "tag.create", f"{repo.type}:{repo.repo_id}", repo.namespace, tag=tag, commit=target)
    return {}


@router.delete("/api/{repo_type}/{namespace}/{name}/tag/{tag}")
def delete_tag(
    request: Request, repo_type: str, namespace: str, name: str, tag: str, actor: ActorDep, repos: ReposDep
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.WRITE)
    git = repos.git(repo)
    with git.locked():
        git.delete_ref(f"refs/tags/{segment(tag)}")
    audit(request, "tag.delete", f"{repo.type}:{repo.repo_id}", repo.namespace, tag=segment(tag))
    return {}
