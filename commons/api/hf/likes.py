"""Likes, as huggingface_hub calls them: `POST|DELETE /api/{type}s/{id}/like` (like, unlike),
`GET /api/users/{user}/likes` (list_liked_repos), `GET /api/{type}s/{id}/likers` (list_repo_likers).

Liking takes what commenting takes (a signed-in caller whose credential may write and who may
discuss in the repo); the lists show only repos the caller may see.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from commons.accounts.actors import Actor
from commons.accounts.permissions import can_see
from commons.accounts.users import get_user
from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep, SessionDep
from commons.api.hf.schemas import iso
from commons.errors import InvalidRequest, Unauthorized
from commons.hub import likes
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos

router = APIRouter()
PREFIX = "/api/{repo_type}/{namespace}/{name}"


def _ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    return RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")


def _set_like(request: Request, ref: RepoRef, actor: Actor | None, repos: Repos, liked: bool) -> dict[str, Any]:
    if actor is None:
        raise Unauthorized(f"You must be authenticated to {'like' if liked else 'unlike'} a repo")
    repo = repos.get(actor, ref, Need.DISCUSS)
    changed = (likes.like if liked else likes.unlike)(repos.session, actor.user_id, repo)
    audit(request, "repo.like" if liked else "repo.unlike", f"{repo.type}:{repo.repo_id}", repo.namespace,
          changed=changed)
    return {"liked": liked, "likes": repo.likes}


@router.post(PREFIX + "/like")
def like_repo(request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep,
              repos: ReposDep) -> dict[str, Any]:
    return _set_like(request, _ref(repo_type, namespace, name), actor, repos, liked=True)


@router.delete(PREFIX + "/like")
def unlike_repo(request: Request, repo_type: str, namespace: str, name: str, actor: ActorDep,
                repos: ReposDep) -> dict[str, Any]:
    return _set_like(request, _ref(repo_type, namespace, name), actor, repos, liked=False)


@router.get(PREFIX + "/likers")
def repo_likers(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep) -> list[dict[str, Any]]:
    repo = repos.get(actor, _ref(repo_type, namespace, name), Need.SEE)
    return [{"user": u.name, "fullname": u.fullname or u.name, "type": "user", "avatarUrl": ""}
            for u in likes.likers(repos.session, repo)]


@router.get("/api/users/{user}/likes")
def user_likes(user: str, actor: ActorDep, session: SessionDep, repos: ReposDep) -> list[dict[str, Any]]:
    found = get_user(session, user)
    if found is None:
        raise InvalidRequest(f"No user named {user!r}")
    return [{"createdAt": iso(item.at), "repo": {"name": item.repo.repo_id, "type": item.repo.type}}
            for item in likes.liked_by(session, found)
            if not item.repo.disabled and can_see(actor, repos.access(actor, item.repo))]
