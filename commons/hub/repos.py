"""Repositories: create, find with access checks, list and search, settings, delete."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, false, func, or_, select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.permissions import Action, RepoAccess, allowed, can_create_in, can_see, owns
from commons.db.models import AccessGrant, Discussion, Repo, RepoObject
from commons.errors import (
    Conflict,
    GatedRepo,
    InvalidRequest,
    PermissionDenied,
    RepoDisabled,
    RepoNotFound,
    Unauthorized,
)
from commons.hub.attributes import DEFAULT_GITATTRIBUTES
from commons.hub.cards import CardError, card_tags, split_front_matter
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.storage import HubStorage


class Need:
    """How much access an operation needs (names kept short for call sites)."""

    SEE = Action.SEE
    FILES = Action.READ
    DISCUSS = Action.DISCUSS
    WRITE = Action.WRITE
    ADMIN = Action.ADMIN


@dataclass(frozen=True)
class RepoQuery:
    type: RepoType
    search: str | None = None
    author: str | None = None
    filters: tuple[str, ...] = ()
    sort: str | None = None
    descending: bool = True
    offset: int = 0
    limit: int = 1000


SORT_COLUMNS = {
    "lastModified": Repo.last_modified,
    "last_modified": Repo.last_modified,
    "createdAt": Repo.created_at,
    "created_at": Repo.created_at,
    "downloads": Repo.downloads,
    "likes": Repo.likes,
    "trendingScore": Repo.likes,
    "id": Repo.name,
}


class Repos:
    """Repository service for one unit of work (one DB session)."""

    def __init__(self, session: Session, storage: HubStorage) -> None:
        self.session = session
        self.storage = storage

    # ------------------------------------------------------------ lookup
    def find(self, ref: RepoRef) -> Repo | None:
        return self.session.scalar(
            select(Repo).where(Repo.type == ref.type.value, Repo.namespace == ref.namespace, Repo.name == ref.name)
        )

    def access(self, actor: Actor | None, repo: Repo) -> RepoAccess:
        granted = False
        if actor is not None and repo.gated != "none":
            granted = (
                self.session.scalar(
                    select(AccessGrant.status).where(
                        AccessGrant.repo_id == repo.id, AccessGrant.user_id == actor.user_id
                    )
                )
                == "accepted"
            )
        key = f"{repo.type}:{repo.namespace}/{repo.name}"
        return RepoAccess(repo.namespace, repo.private, repo.gated, granted, key)

    def get(self, actor: Actor | None, ref: RepoRef, need: Action = Action.SEE) -> Repo:
        """The repo, if the caller may do `need` with it; else the error the Hub would give."""
        repo = self.find(ref)
        if repo is None:
            raise RepoNotFound(ref.repo_id)
        access = self.access(actor, repo)
        if not can_see(actor, access):
            raise RepoNotFound(ref.repo_id)
        if repo.disabled and not (actor and actor.is_admin):
            raise RepoDisabled(ref.repo_id)
        if need is Action.SEE or allowed(actor, need, access):
            return repo
        if need is Action.READ:
            raise GatedRepo(ref.repo_id)
        if actor is None:
            raise Unauthorized(f"You must be authenticated to {need.value} in this repo")
        what = {Action.DISCUSS: "open discussions in", Action.WRITE: "write to", Action.ADMIN: "administer"}[need]
        hint = " (your token does not allow it)" if owns(actor, repo.namespace) else ""
        raise PermissionDenied(f"You don't have the rights to {what} {ref.repo_id}{hint}")

    def git(self, repo: Repo) -> GitRepo:
        return self.storage.git(repo.id)

    def url_path(self, repo: Repo) -> str:
        return f"{RepoType(repo.type).url_prefix}{repo.namespace}/{repo.name}"

    # ------------------------------------------------------------ create / delete / settings
    def create(self, actor: Actor | None, ref: RepoRef, private: bool = False) -> Repo:
        if actor is None:
            raise Unauthorized("You must be authenticated to create a repo")
        if not can_create_in(actor, ref.namespace):
            raise PermissionDenied(f"You don't have the rights to create a repo under {ref.namespace!r}")
        if ref.type is RepoType.SPACE:
            raise InvalidRequest("Spaces are not supported by this hub")
        if self.find(ref) is not None:
            raise Conflict(f"You already created this {ref.type.value} repo")
        repo = Repo(
            id=secrets.token_hex(16),
            type=ref.type.value,
            namespace=ref.namespace,
            name=ref.name,
            private=private,
            gated="none",
            tags=[],
        )
        path = self.storage.git_path(repo.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        git = GitRepo.create(path, DEFAULT_GITATTRIBUTES, actor.name)
        repo.head_sha = git.resolve(MAIN)
        self.session.add(repo)
        try:
            self.session.flush()
        except Exception:
            # Lost a race with a concurrent create of the same name: drop our directory.
            git.destroy()
            raise
        return repo

    def delete(self, actor: Actor | None, ref: RepoRef) -> None:
        repo = self.get(actor, ref, Need.ADMIN)
        git = self.git(repo)
        self.session.execute(delete(RepoObject).where(RepoObject.repo_id == repo.id))
        self.session.execute(delete(Discussion).where(Discussion.repo_id == repo.id))
        self.session.execute(delete(AccessGrant).where(AccessGrant.repo_id == repo.id))
        self.session.delete(repo)
        self.session.flush()
        # The row goes first; a crash before the rename below leaves an unreferenced directory, not a broken repo.
        git.destroy()

    def update_settings(
        self, actor: Actor | None, ref: RepoRef, private: bool | None = None, gated: str | bool | None = None
    ) -> Repo:
        repo = self.get(actor, ref, Need.ADMIN)
        if private is not None:
            repo.private = private
        if gated is not None:
            value = "none" if gated is False or gated in ("false", "none") else str(gated)
            if value not in ("none", "auto", "manual"):
                raise InvalidRequest(f"gated must be false, 'auto' or 'manual', got {gated!r}")
            repo.gated = value
        repo.last_modified = datetime.now(UTC)
        return repo

    # ------------------------------------------------------------ index
    def reindex(self, repo: Repo, git: GitRepo | None = None) -> None:
        """Refresh the listing columns (card data, tags) from the head of main."""
        git = git or self.git(repo)
        head = git.ref_target(f"refs/heads/{MAIN}")
        if head is None or head == repo.head_sha:
            return
        entry = git.entry(head, "README.md")
        meta = None
        if entry is not None and entry.type == "file" and entry.size < 1_000_000:
            try:
                meta, _ = split_front_matter(git.read_blob(entry.oid).decode("utf-8", "replace"))
            except CardError:
                meta = None
        repo.card_data = meta
        repo.tags = card_tags(meta)
        repo.library_name = str(meta["library_name"]) if meta and meta.get("library_name") else None
        repo.pipeline_tag = str(meta["pipeline_tag"]) if meta and meta.get("pipeline_tag") else None
        repo.head_sha = head
        repo.last_modified = git.commit_info(head).date

    # ------------------------------------------------------------ listing
    def list(self, actor: Actor | None, query: RepoQuery) -> list[Repo]:
        stmt = self._visible(actor, select(Repo).where(Repo.type == query.type.value))
        if query.search:
            needle = f"%{query.search.lower()}%"
            stmt = stmt.where(func.lower(Repo.namespace + "/" + Repo.name).like(needle))
        if query.author:
            stmt = stmt.where(Repo.namespace == query.author)
        column = SORT_COLUMNS.get(query.sort or "", Repo.last_modified if query.sort else None)
        if query.sort and query.sort not in SORT_COLUMNS:
            raise InvalidRequest(f"Unknown sort key {query.sort!r}")
        order = [column.desc() if query.descending else column.asc()] if column is not None else []
        stmt = stmt.order_by(*order, Repo.created_at.desc(), Repo.id)
        if not query.filters:
            return list(self.session.scalars(stmt.offset(query.offset).limit(query.limit)))
        # Tags live in a JSON list; filter in Python over the (already narrowed) rows.
        wanted = [f.lower() for f in query.filters]
        out: list[Repo] = []
        skipped = 0
        for repo in self.session.scalars(stmt):
            tags = {t.lower() for t in repo.tags} | {f"{repo.type}:{repo.namespace}/{repo.name}".lower()}
            if all(w in tags for w in wanted):
                if skipped < query.offset:
                    skipped += 1
                    continue
                out.append(repo)
                if len(out) >= query.limit:
                    break
        return out

    def _visible(self, actor: Actor | None, stmt: Select[Any]) -> Select[Any]:
        if actor is not None and actor.is_admin and actor.scopes is None:
            return stmt
        cond: ColumnElement[bool] = Repo.private == false()
        if actor is not None:
            namespaces = [actor.name, *actor.orgs]
            if actor.scopes is not None:
                # A fine-grained token shows private repos only where its scopes reach.
                names = {s.resource for s in actor.scopes}
                keys = [k.split(":", 1)[1] for k in names if ":" in k]
                namespaces = [n for n in namespaces if n in names]
                cond = or_(cond, (Repo.namespace + "/" + Repo.name).in_(keys))
            cond = or_(cond, Repo.namespace.in_(namespaces))
        return stmt.where(cond)
