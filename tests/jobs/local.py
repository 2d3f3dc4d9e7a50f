"""A hub in this process (no server): Services on a temp home, users, and repos filled from folders."""

from __future__ import annotations

from pathlib import Path

from commons.accounts.actors import Actor
from commons.accounts.tokens import actor_for
from commons.accounts.users import create_user, get_user
from commons.config import Settings
from commons.db import migrate
from commons.hub.ids import RepoRef, RepoType
from commons.hub.publish import commit_directory
from commons.hub.repos import Repos
from commons.services import Services, build_services


def local_services(home: Path, database_url: str | None = None) -> Services:
    settings = Settings(home=home, database_url=database_url)
    home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.sqlalchemy_url)
    return build_services(settings)


def user_actor(services: Services, name: str, admin: bool = False) -> Actor:
    with services.session() as session:
        user = get_user(session, name) or create_user(session, name, admin=admin)
        return actor_for(session, user, "write")


def upload(services: Services, actor: Actor, repo_type: str, repo_id: str, folder: Path) -> str:
    """Create the repo and commit `folder` to it; returns the commit sha."""
    ref = RepoRef.parse(RepoType(repo_type), repo_id)
    with services.session() as session:
        repos = Repos(session, services.storage)
        repo = repos.create(actor, ref)
        session.commit()
        return commit_directory(session, services.storage, repo, repos.git(repo), actor, folder, "upload").oid
