"""Discussions and pull requests on repos: `refs/pr/N` refs, events, merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.db.models import Discussion, DiscussionEvent, Repo
from commons.errors import CommonsError, Conflict, InvalidRequest, PermissionDenied
from commons.hub.gitrepo import MAIN, GitRepo


class DiscussionNotFound(CommonsError):
    """No discussion with this number in the repo."""


@dataclass(frozen=True)
class DiscussionPage:
    items: list[Discussion]
    count: int
    start: int


PAGE = 50


def pr_ref(num: int) -> str:
    return f"refs/pr/{num}"


def _next_num(session: Session, repo: Repo) -> int:
    # Row lock on PostgreSQL; SQLite serialises writers anyway.
    locked = session.scalar(select(Repo).where(Repo.id == repo.id).with_for_update())
    assert locked is not None
    num = locked.next_discussion_num
    locked.next_discussion_num = num + 1
    return num


def create(
    session: Session,
    repo: Repo,
    git: GitRepo,
    actor: Actor,
    title: str,
    description: str = "",
    pull_request: bool = False,
    base_branch: str = MAIN,
) -> Discussion:
    title = title.strip()
    if not title or len(title) > 300:
        raise InvalidRequest("A discussion needs a title of 1 to 300 characters")
    num = _next_num(session, repo)
    discussion = Discussion(
        repo_id=repo.id,
        num=num,
        title=title,
        is_pull_request=pull_request,
        status="draft" if pull_request else "open",
        author_id=actor.user_id,
        target_branch=f"refs/heads/{base_branch}" if pull_request else None,
    )
    session.add(discussion)
    session.flush()
    if description:
        add_event(session, discussion, actor, "comment", _comment_data(description))
    if pull_request:
        head = git.ref_target(f"refs/heads/{base_branch}")
        if head is None:
            raise InvalidRequest(f"Unknown base branch {base_branch!r}")
        git.create_ref(pr_ref(num), head)
    return discussion


def _comment_data(text: str) -> dict[str, Any]:
    return {"edited": False, "hidden": False, "latest": {"raw": text, "html": None}}


def add_event(
    session: Session, discussion: Discussion, actor: Actor | None, type_: str, data: dict[str, Any]
) -> DiscussionEvent:
    event = DiscussionEvent(
        discussion_id=discussion.id, type=type_, author_id=actor.user_id if actor else None, data=data
    )
    session.add(event)
    session.flush()
    discussion.events.append(event) if event not in discussion.events else None
    return event


def get(session: Session, repo: Repo, num: int) -> Discussion:
    discussion = session.scalar(select(Discussion).where(Discussion.repo_id == repo.id, Discussion.num == num))
    if discussion is None:
        raise DiscussionNotFound(f"Discussion #{num} not found")
    return discussion


def list_page(
    session: Session,
    repo: Repo,
    page: int = 0,
    kind: str | None = None,
    status: str | None = None,
    author: int | None = None,
) -> DiscussionPage:
    stmt = select(Discussion).where(Discussion.repo_id == repo.id)
    if kind == "pull_request":
        stmt = stmt.where(Discussion.is_pull_request.is_(True))
    elif kind == "discussion":
        stmt = stmt.where(Discussion.is_pull_request.is_(False))
    if status == "open":
        stmt = stmt.where(Discussion.status.in_(("open", "draft")))
    elif status == "closed":
        stmt = stmt.where(Discussion.status.in_(("closed", "merged")))
    if author is not None:
        stmt = stmt.where(Discussion.author_id == author)
    count = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(Discussion.num.desc()).offset(page * PAGE).limit(PAGE)))
    return DiscussionPage(items, count, page * PAGE)


def comment(session: Session, discussion: Discussion, actor: Actor, text: str) -> DiscussionEvent:
    if not text.strip():
        raise InvalidRequest("A comment cannot be empty")
    return add_event(session, discussion, actor, "comment", _comment_data(text))


def change_status(
    session: Session, discussion: Discussion, actor: Actor, status: str, note: str = "", is_writer: bool = False
) -> DiscussionEvent:
    if status not in ("open", "closed"):
        raise InvalidRequest("status must be 'open' or 'closed'")
    if discussion.status == "merged":
        raise InvalidRequest("A merged pull request cannot change status")
    if not (is_writer or discussion.author_id == actor.user_id):
        raise PermissionDenied("Only the author or the repo's writers can change the status")
    discussion.status = status
    if note:
        add_event(session, discussion, actor, "comment", _comment_data(note))
    return add_event(session, discussion, actor, "status-change", {"status": status})


def rename(session: Session, discussion: Discussion, actor: Actor, title: str, is_writer: bool) -> DiscussionEvent:
    if not (is_writer or discussion.author_id == actor.user_id):
        raise PermissionDenied("Only the author or the repo's writers can rename")
    title = title.strip()
    if not title or len(title) > 300:
        raise InvalidRequest("A title must have 1 to 300 characters")
    old, discussion.title = discussion.title, title
    return add_event(session, discussion, actor, "title-change", {"from": old, "to": title})


def merge(session: Session, discussion: Discussion, git: GitRepo, actor: Actor, note: str = "") -> str:
    """Merge a PR into its target branch; returns the new head. Fast-forwards when possible."""
    if not discussion.is_pull_request:
        raise InvalidRequest("Only pull requests can be merged")
    if discussion.status in ("merged", "closed"):
        raise InvalidRequest(f"This pull request is {discussion.status}")
    target = discussion.target_branch or f"refs/heads/{MAIN}"
    head = git.ref_target(pr_ref(discussion.num))
    assert head is not None
    with git.locked():
        base_head = git.ref_target(target)
        if base_head is None:
            raise InvalidRequest(f"Target branch {target} no longer exists")
        if git.is_ancestor(base_head, head):
            new = head
        else:
            ancestor = git.merge_base(base_head, head)
            if ancestor is None:
                raise Conflict("The pull request has no common history with its target")
            new = git.merge_trees(
                ancestor, base_head, head, f"Merge pull request #{discussion.num}: {discussion.title}", actor.name
            )
        git.set_ref(target, new)
    discussion.merge_commit = new
    discussion.status = "merged"
    if note:
        add_event(session, discussion, actor, "comment", _comment_data(note))
    add_event(session, discussion, actor, "status-change", {"status": "merged"})
    return new
