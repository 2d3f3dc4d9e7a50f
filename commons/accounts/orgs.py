"""Organisations and their members. An organisation never loses its last admin."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons.accounts.actors import Actor, Role
from commons.accounts.users import RESERVED_NAMES, get_user
from commons.db.models import Membership, Org, User
from commons.errors import Conflict, InvalidRequest, PermissionDenied
from commons.hub.ids import validate_name


def get_org(session: Session, name: str) -> Org | None:
    return session.scalar(select(Org).where(Org.name == name))


def namespace_exists(session: Session, name: str) -> bool:
    return get_user(session, name) is not None or get_org(session, name) is not None


def create_org(session: Session, actor: Actor, name: str, fullname: str = "") -> Org:
    """Create an organisation; its creator becomes its first admin."""
    validate_name(name, "organisation name")
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequest(f"The name {name!r} is reserved")
    if namespace_exists(session, name):
        raise Conflict(f"The name {name!r} is taken")
    org = Org(name=name, fullname=fullname or name)
    session.add(org)
    session.flush()
    session.add(Membership(org_id=org.id, user_id=actor.user_id, role=Role.ADMIN.value))
    session.flush()
    return org


def _require_admin(actor: Actor, org: Org) -> None:
    if not (actor.is_admin or actor.orgs.get(org.name) == Role.ADMIN) or actor.role == "read":
        raise PermissionDenied(f"Only admins of {org.name} can change its members")


def _admins(session: Session, org: Org) -> int:
    return session.scalar(
        select(func.count()).select_from(Membership).where(Membership.org_id == org.id,
                                                            Membership.role == Role.ADMIN.value)
    ) or 0


def set_member(session: Session, actor: Actor, org: Org, user: User, role: Role) -> Membership:
    """Add a member or change a member's role (org admins only)."""
    _require_admin(actor, org)
    member = session.get(Membership, (org.id, user.id))
    if member is not None and member.role == Role.ADMIN and role != Role.ADMIN and _admins(session, org) <= 1:
        raise InvalidRequest(f"{user.name} is the last admin of {org.name}: make someone else admin first")
    if member is None:
        member = Membership(org_id=org.id, user_id=user.id, role=role.value)
        session.add(member)
    else:
        member.role = role.value
    session.flush()
    return member


def remove_member(session: Session, actor: Actor, org: Org, user: User) -> None:
    if actor.user_id != user.id:
        _require_admin(actor, org)
    member = session.get(Membership, (org.id, user.id))
    if member is None:
        raise InvalidRequest(f"{user.name} is not a member of {org.name}")
    if member.role == Role.ADMIN and _admins(session, org) <= 1:
        raise InvalidRequest(f"{user.name} is the last admin of {org.name}: an organisation needs an admin")
    session.delete(member)
    session.flush()


def members(session: Session, org: Org) -> list[tuple[str, str]]:
    rows = session.execute(
        select(User.name, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id).order_by(User.name)
    )
    return [(n, r) for n, r in rows]
