"""Users: create, find."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.db.models import User
from commons.errors import Conflict, InvalidRequest
from commons.hub.ids import validate_name


def create_user(
    session: Session, name: str, *, admin: bool = False, fullname: str = "", email: str | None = None
) -> User:
    validate_name(name, "user name")
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequest(f"The name {name!r} is reserved")
    if get_user(session, name) is not None:
        raise Conflict(f"User {name!r} already exists")
    user = User(name=name, is_admin=admin, fullname=fullname or name, email=email)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


# Names that would collide with top-level URL paths of the hub.
RESERVED_NAMES = frozenset(
    {"api", "datasets", "spaces", "models", "static", "blobs", "upload", "lfs-upload", "lfs-verify", "login",
     "logout", "settings", "new", "search", "docs", "openapi.json", "v1", "admin", "organizations", "users",
     "jobs", "join", "leaderboard"}
)
