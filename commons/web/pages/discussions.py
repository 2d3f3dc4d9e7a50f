"""Discussions and pull requests: list, open, comment, review a PR's diff, merge, close and reopen.

The same hub functions and the same access rules as the Discussions API (`api/hf/discussions.py`):
taking part needs DISCUSS, changing the status needs the author or a writer, merging needs WRITE.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from commons.accounts.actors import Actor
from commons.api.audit import audit
from commons.db.models import Discussion
from commons.hub import discussions as d
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.repos import Need
from commons.web.deps import SignedInForm
from commons.web.diffs import Diff, parse_diff
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render

STATUSES = ("open", "closed", "all")
KINDS = ("all", "discussion", "pull_request")


def _url(view: RepoView, num: int, anchor: str = "") -> str:
    return f"{view.base}/discussions/{num}" + (f"#{anchor}" if anchor else "")


@repo_route("/discussions")
def discussion_list(request: Request, view: RepoViewDep, status: str = "open", type: str = "all", p: int = 0
                    ) -> Response:
    status = status if status in STATUSES else "open"
    kind = type if type in KINDS else "all"
    page = d.list_page(view.repos.session, view.repo, max(0, p), None if kind == "all" else kind,
                       None if status == "all" else status)
    return render(request, "pages/discussions.html", view=view, repo=view.repo, tab="discussions", rev=MAIN,
                  page=page, status=status, kind=kind, p=max(0, p), per_page=d.PAGE)


# ---------------------------------------------------------------- new
@repo_route("/discussions/new")
def new_discussion_page(request: Request, view: RepoViewDep) -> Response:
    view.require(Need.DISCUSS)  # signed out: off to sign in; no rights: the 403 page
    return render(request, "pages/discussion_new.html", view=view, repo=view.repo, tab="discussions", rev=MAIN,
                  error=None, title="", description="")


@repo_route("/discussions/new", methods=("POST",))
def new_discussion(request: Request, view: RepoViewDep, actor: SignedInForm,
                   title: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.DISCUSS)
    disc = d.create(view.repos.session, repo, view.git(), actor, title, description.strip())
    audit(request, "discussion.create", f"{repo.type}:{repo.repo_id}#{disc.num}", repo.namespace,
          pull_request=False, via="web")
    return RedirectResponse(_url(view, disc.num), status_code=303)


# ---------------------------------------------------------------- one discussion
def _fork_point(git: GitRepo, disc: Discussion) -> str | None:
    """Where a merged PR started: the parent of its first pushed commit."""
    for event in disc.events:
        oid = event.data.get("oid") if event.type == "commit" else None
        if isinstance(oid, str):
            try:
                parents = git.commit_info(oid).parents
            except (KeyError, ValueError):
                return None
            return parents[0] if parents else None
    return None


def pr_diff(git: GitRepo, disc: Discussion) -> Diff:
    """What the pull request changes against its target, as the Hub shows it."""
    head = git.ref_target(d.pr_ref(disc.num))
    if head is None:
        return Diff()
    if disc.status == "merged" and disc.merge_commit:
        merged = git.commit_info(disc.merge_commit)
        if len(merged.parents) > 1:
            return parse_diff(git.diff(merged.parents[0], disc.merge_commit))
        fork = _fork_point(git, disc)
        return parse_diff(git.diff(fork, head)) if fork else Diff()
    base = git.ref_target(disc.target_branch or f"refs/heads/{MAIN}")
    if base is None:
        return Diff()
    ancestor = git.merge_base(base, head) or base
    return parse_diff(git.diff(ancestor, head))


def _may_change_status(view: RepoView, disc: Discussion, actor: Actor | None) -> bool:
    return actor is not None and view.can_discuss and (view.can_write or disc.author_id == actor.user_id)


def _detail_context(view: RepoView, disc: Discussion) -> dict[str, Any]:
    actor = view.viewer.actor
    git = view.git()
    target = (disc.target_branch or f"refs/heads/{MAIN}").removeprefix("refs/heads/")
    head = git.ref_target(d.pr_ref(disc.num)) if disc.is_pull_request else None
    base = git.ref_target(f"refs/heads/{target}") if disc.is_pull_request else None
    fast_forward = bool(head and base and git.is_ancestor(base, head))
    return {
        "view": view, "repo": view.repo, "tab": "discussions", "rev": MAIN, "disc": disc,
        "target": target, "head": head, "fast_forward": fast_forward,
        "comments": sum(1 for e in disc.events if e.type == "comment"),
        "may_status": _may_change_status(view, disc, actor),
        "may_merge": disc.is_pull_request and view.can_write and disc.status in ("open", "draft"),
        "pr_ref": d.pr_ref(disc.num),
    }


@repo_route("/discussions/{num}")
def discussion(request: Request, view: RepoViewDep, num: int, tab: str = "conversation") -> Response:
    disc = d.get(view.repos.session, view.repo, num)
    context = _detail_context(view, disc)
    diff = None
    if disc.is_pull_request and tab == "files":
        view.require(Need.FILES)  # the diff shows file contents
        diff = pr_diff(view.git(), disc)
    else:
        tab = "conversation"
    return render(request, "pages/discussion.html", diff=diff, subtab=tab, **context)


@repo_route("/discussions/{num}/comment", methods=("POST",))
def comment(request: Request, view: RepoViewDep, num: int, actor: SignedInForm,
            comment: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.DISCUSS)
    disc = d.get(view.repos.session, repo, num)
    event = d.comment(view.repos.session, disc, actor, comment)
    audit(request, "discussion.comment", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace, via="web")
    if request.headers.get("hx-request") == "true":
        # htmx: append the new comment to the timeline and hand back an empty form.
        return render(request, "partials/comment_added.html", event=event, **_detail_context(view, disc))
    return RedirectResponse(_url(view, num, f"event-{event.id}"), status_code=303)


@repo_route("/discussions/{num}/status", methods=("POST",))
def change_status(request: Request, view: RepoViewDep, num: int, actor: SignedInForm,
                  status: Annotated[str, Form()] = "", comment: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.DISCUSS)
    disc = d.get(view.repos.session, repo, num)
    d.change_status(view.repos.session, disc, actor, status, comment.strip(), view.can_write)
    audit(request, "discussion.status", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace, status=status,
          via="web")
    return RedirectResponse(_url(view, num), status_code=303)


@repo_route("/discussions/{num}/title", methods=("POST",))
def change_title(request: Request, view: RepoViewDep, num: int, actor: SignedInForm,
                 title: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.DISCUSS)
    disc = d.get(view.repos.session, repo, num)
    d.rename(view.repos.session, disc, actor, title, view.can_write)
    audit(request, "discussion.title", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace, via="web")
    return RedirectResponse(_url(view, num), status_code=303)


@repo_route("/discussions/{num}/merge", methods=("POST",))
def merge(request: Request, view: RepoViewDep, num: int, actor: SignedInForm,
          comment: Annotated[str, Form()] = "") -> Response:
    repo = view.require(Need.WRITE)
    git = view.git()
    new = d.merge(view.repos.session, d.get(view.repos.session, repo, num), git, actor, comment.strip())
    view.repos.reindex(repo, git)
    audit(request, "pr.merge", f"{repo.type}:{repo.repo_id}#{num}", repo.namespace, commit=new, via="web")
    return RedirectResponse(_url(view, num), status_code=303)
