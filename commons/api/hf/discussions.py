"""Discussions and pull requests (the Hub's Discussions API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from commons.accounts.actors import Actor
from commons.accounts.permissions import can_write
from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep
from commons.api.hf.schemas import iso
from commons.db.models import Discussion, DiscussionEvent, Repo
from commons.errors import Unauthorized
from commons.hub import discussions as d
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos

router = APIRouter()
PREFIX = "/api/{repo_type}/{namespace}/{name}/discussions"


def _ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    return RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")


def _require(actor: Actor | None) -> Actor:
    if actor is None:
        raise Unauthorized("You must be authenticated to take part in discussions")
    return actor


def event_json(e: DiscussionEvent) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "type": e.type,
        "createdAt": iso(e.created_at),
        "author": {"name": e.author.name if e.author else "deleted", "type": "user"},
        "data": e.data,
    }


def discussion_json(repo: Repo, disc: Discussion) -> dict[str, Any]:
    return {
        "num": disc.num,
        "title": disc.title,
        "status": disc.status,
        "isPullRequest": disc.is_pull_request,
        "createdAt": iso(disc.created_at),
        "author": {"name": disc.author.name if disc.author else "deleted", "type": "user"},
        "repo": {"name": repo.repo_id, "type": repo.type},
        "pinned": False,
        "numComments": sum(1 for e in disc.events if e.type == "comment"),
        "topReactions": [],
    }


def details_json(repos: Repos, repo: Repo, disc: Discussion, with_diff: bool) -> dict[str, Any]:
    out = discussion_json(repo, disc)
    out["events"] = [event_json(e) for e in disc.events]
    if disc.is_pull_request:
        changes: dict[str, Any] = {"base": disc.target_branch or "refs/heads/main"}
        if disc.merge_commit:
            changes["mergeCommitId"] = disc.merge_commit
        out["changes"] = changes
        out["filesWithConflicts"] = []
        if with_diff:
            git = repos.git(repo)
            head = git.ref_target(d.pr_ref(disc.num))
            base = git.ref_target(changes["base"])
            if head and base:
                ancestor = git.merge_base(base, head) or base
                out["diff"] = git.diff(ancestor, head)
    return out


@router.get(PREFIX)
def list_discussions(
    repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
    p: int = 0, type: str | None = None, status: str | None = None, author: str | None = None,
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    author_id = None
    if author:
        from commons.accounts.users import get_user

        user = get_user(repos.session, author)
        author_id = user.id if user else -1
    page = d.list_page(repos.session, repo, p, None if type in (None, "all") else type,
                       None if status in (None, "all") else status, author_id)
    return {"discussions": [discussion_json(repo, x) for x in page.items], "count": page.count, "start": page.start}


@router.post(PREFIX)
def create_discussion(
    request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    who = _require(actor)
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.DISCUSS)
    disc = d.create(repos.session, repo, repos.git(repo), who, str(body.get("title", "")),
                    str(body.get("description") or ""), bool(body.get("pullRequest")))
    audit(request, "discussion.create", f"{repo.type}:{repo.repo_id}#{disc.num}", repo.namespace,
          pull_request=disc.is_pull_request)
    return {"num": disc.num, "url": f"/{repo.repo_id}/discussions/{disc.num}"}


@router.get(PREFIX + "/{num}")
def get_discussion(
    repo_type: str, namespace: str, name: str, num: int, actor: ActorDep, repos: ReposDep, diff: str | None = None,
) -> dict[str, Any]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    return details_json(repos, repo, d.get(repos.session, repo, num), diff in ("1", "true"))


@router.post(PREFIX + "/{num}/comment")
def comment(
    request: Request, repo_type: str, namespace: str, name: str, num: int, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    who = _require(actor)
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.DISCUSS)
    event = d.comment(repos.session, d.get(repos.session, repo, num), who, str(body.get("comment", "")))
    audit(request, "discussion.comment", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace)
    return {"newMessage": event_json(event)}


def _for_change(actor: Actor | None, repos: Repos, ref: RepoRef, num: int) -> tuple[Actor, Repo, Discussion, bool]:
    """Who changes discussion `num`, its repo, the discussion, and whether they write to the repo."""
    who = _require(actor)
    # The credential must allow taking part; then the author or a writer may change the discussion.
    repo = repos.get(actor, ref, Need.DISCUSS)
    return who, repo, d.get(repos.session, repo, num), can_write(who, repos.access(who, repo))


@router.post(PREFIX + "/{num}/status")
def change_status(
    request: Request, repo_type: str, namespace: str, name: str, num: int, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    who, repo, discussion, writer = _for_change(actor, repos, _ref(repo_type, namespace, name), num)
    event = d.change_status(repos.session, discussion, who, str(body.get("status", "")),
                            str(body.get("comment") or ""), writer)
    audit(request, "discussion.status", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace,
          status=event.data.get("status"))
    return {"newStatus": event_json(event)}


@router.post(PREFIX + "/{num}/title")
def change_title(
    request: Request, repo_type: str, namespace: str, name: str, num: int, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    who, repo, discussion, writer = _for_change(actor, repos, _ref(repo_type, namespace, name), num)
    event = d.rename(repos.session, discussion, who, str(body.get("title", "")), writer)
    audit(request, "discussion.title", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace)
    return {"newTitle": event_json(event)}


@router.post(PREFIX + "/{num}/merge")
def merge(
    request: Request, repo_type: str, namespace: str, name: str, num: int, actor: ActorDep, repos: ReposDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    who = _require(actor)
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.WRITE)
    git = repos.git(repo)
    new = d.merge(repos.session, d.get(repos.session, repo, num), git, who, str((body or {}).get("comment") or ""))
    repos.reindex(repo, git)
    audit(request, "pr.merge", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace, commit=new)
    return {"mergeCommitId": new}
