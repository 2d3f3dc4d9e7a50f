"""Likes: one row per (user, repo), and the repo's `likes` counter changed in the same transaction.

The counter moves by SQL increments (`likes = likes + 1`), not by recounting, so two people liking
at once on PostgreSQL both count: the second UPDATE waits for the first row lock and re-reads the
row. Liking twice, or unliking what was never liked, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from commons.db.models import Like, Repo, User, utcnow

MAX_LISTED = 10_000


@dataclass(frozen=True)
class LikedRepo:
    repo: Repo
    at: datetime


def has_liked(session: Session, user_id: int, repo: Repo) -> bool:
    return session.get(Like, (user_id, repo.id)) is not None


def like(session: Session, user_id: int, repo: Repo) -> bool:
    """Record the like; False when it was already there."""
    # INSERT ... ON CONFLICT DO NOTHING: a concurrent like by the same user adds no second row and
    # no second count, without a savepoint (pysqlite's savepoints would commit early).
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = session.execute(insert(Like).values(user_id=user_id, repo_id=repo.id, created_at=utcnow())
                            .on_conflict_do_nothing().returning(Like.user_id)).first()
    if added is None:
        return False
    session.execute(update(Repo).where(Repo.id == repo.id).values(likes=Repo.likes + 1))
    session.refresh(repo, ["likes"])
    return True


def unlike(session: Session, user_id: int, repo: Repo) -> bool:
    """Remove the like; False when there was none."""
    gone = session.execute(delete(Like).where(Like.user_id == user_id, Like.repo_id == repo.id)
                           .returning(Like.user_id)).first()
    if gone is None:
        return False
    session.execute(update(Repo).where(Repo.id == repo.id, Repo.likes > 0).values(likes=Repo.likes - 1))
    session.refresh(repo, ["likes"])
    return True


def liked_by(session: Session, user: User) -> list[LikedRepo]:
    """The repos `user` liked, newest like first (callers filter what their viewer may see)."""
    rows = session.execute(select(Repo, Like.created_at).join(Like, Like.repo_id == Repo.id)
                           .where(Like.user_id == user.id).order_by(Like.created_at.desc(), Repo.id)
                           .limit(MAX_LISTED))
    return [LikedRepo(repo, at) for repo, at in rows]


def likers(session: Session, repo: Repo) -> list[User]:
    """Who liked `repo`, first likes first."""
    return list(session.scalars(select(User).join(Like, Like.user_id == User.id).where(Like.repo_id == repo.id)
                                .order_by(Like.created_at, User.id).limit(MAX_LISTED)))
