"""`commons orgs create|add|remove|list`."""

from __future__ import annotations

import typer

from commons.accounts import audit
from commons.accounts.actors import Actor, Role
from commons.accounts.orgs import create_org, get_org, members, remove_member, set_member
from commons.accounts.users import get_user
from commons.config import Settings
from commons.errors import CommonsError
from commons.services import build_services

app = typer.Typer(help="Organisations and their members.", no_args_is_help=True)
# The operator at the console administers everything, as the data directory's owner.
OPERATOR = Actor(user_id=0, name="operator", is_admin=True, role="write", token_name="cli")


def _fail(exc: CommonsError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


@app.command()
def create(name: str, admin: str = typer.Option(..., help="User who becomes the first admin.")) -> None:
    """Create organisation NAME with ADMIN as its first admin."""
    services = build_services(Settings())
    try:
        with services.session() as session:
            user = get_user(session, admin)
            if user is None:
                raise CommonsError(f"No user named {admin!r}")
            org = create_org(session, Actor(user.id, user.name, False, "write", orgs={}), name)
            typer.echo(f"created organisation {org.name} (admin: {admin})")
    except CommonsError as exc:
        raise _fail(exc) from None
    audit.record(services.sessions, "org.create", f"org:{name}", actor="operator", token="cli", namespace=name)


@app.command()
def add(org: str, user: str, role: Role = typer.Option(Role.READ, help="read, contributor, write or admin.")) -> None:
    """Add USER to ORG (or change their role)."""
    services = build_services(Settings())
    try:
        with services.session() as session:
            found, account = get_org(session, org), get_user(session, user)
            if found is None or account is None:
                raise CommonsError("Unknown organisation or user")
            set_member(session, OPERATOR, found, account, role)
    except CommonsError as exc:
        raise _fail(exc) from None
    audit.record(services.sessions, "org.member.set", f"org:{org}", actor="operator", token="cli", namespace=org,
                 details={"user": user, "role": role.value})
    typer.echo(f"{user} is {role.value} in {org}")


@app.command()
def remove(org: str, user: str) -> None:
    """Remove USER from ORG (never its last admin)."""
    services = build_services(Settings())
    try:
        with services.session() as session:
            found, account = get_org(session, org), get_user(session, user)
            if found is None or account is None:
                raise CommonsError("Unknown organisation or user")
            remove_member(session, OPERATOR, found, account)
    except CommonsError as exc:
        raise _fail(exc) from None
    audit.record(services.sessions, "org.member.remove", f"org:{org}", actor="operator", token="cli",
                 namespace=org, details={"user": user})
    typer.echo(f"removed {user} from {org}")


@app.command("list")
def list_members(org: str) -> None:
    """List ORG's members and their roles."""
    services = build_services(Settings())
    with services.session() as session:
        found = get_org(session, org)
        if found is None:
            raise typer.Exit(1)
        for name, role in members(session, found):
            typer.echo(f"{name}\t{role}")
