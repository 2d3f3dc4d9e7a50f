"""Likes: idempotent, the repo's counter always equals its like rows, users' lists newest first."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from commons.db import migrate
from commons.db.base import make_engine, make_sessionmaker
from commons.db.models import Like, Repo, User
from commons.hub import likes


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database(f"likes_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    with maker.begin() as s:
        s.add_all([User(name=n) for n in ("ann", "ben", "cid")])
        s.add_all([Repo(id=f"r{i}", type="model", namespace="ann", name=f"m{i}", tags=[]) for i in range(3)])
    yield maker
    engine.dispose()


def _count(s: Session, repo: Repo) -> tuple[int, int]:
    s.refresh(repo)
    rows = s.scalar(select(func.count()).select_from(Like).where(Like.repo_id == repo.id)) or 0
    return repo.likes, rows


def _user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    assert user is not None
    return user


def test_like_and_unlike_are_idempotent_and_keep_the_counter(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        repo = s.get(Repo, "r0")
        assert repo is not None
        ann, ben = _user(s, "ann"), _user(s, "ben")
        assert likes.like(s, ann.id, repo) and not likes.like(s, ann.id, repo)
        assert likes.like(s, ben.id, repo)
        assert _count(s, repo) == (2, 2) and repo.likes == 2
        assert likes.unlike(s, ann.id, repo) and not likes.unlike(s, ann.id, repo)
        assert _count(s, repo) == (1, 1)
        assert [u.name for u in likes.likers(s, repo)] == ["ben"]
        assert likes.has_liked(s, ben.id, repo) and not likes.has_liked(s, ann.id, repo)


def test_a_failed_transaction_leaves_neither_row_nor_count(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as s:
        repo = s.get(Repo, "r1")
        assert repo is not None
        likes.like(s, _user(s, "ann").id, repo)
        raise RuntimeError("the request failed after the like")
    with sessions() as s:
        repo = s.get(Repo, "r1")
        assert repo is not None
        assert _count(s, repo) == (0, 0)


def test_concurrent_likes_all_count(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        ids = [_user(s, n).id for n in ("ann", "ben", "cid")]

    def like(user_id: int) -> None:
        with sessions.begin() as s:
            repo = s.get(Repo, "r2")
            assert repo is not None
            likes.like(s, user_id, repo)

    threads = [threading.Thread(target=like, args=(uid,)) for uid in ids * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as s:
        repo = s.get(Repo, "r2")
        assert repo is not None
        assert _count(s, repo) == (3, 3)


def test_liked_by_lists_newest_first(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        ann = _user(s, "ann")
        for rid in ("r0", "r2", "r1"):
            repo = s.get(Repo, rid)
            assert repo is not None
            likes.like(s, ann.id, repo)
    with sessions() as s:
        assert [item.repo.name for item in likes.liked_by(s, _user(s, "ann"))] == ["m1", "m2", "m0"]
