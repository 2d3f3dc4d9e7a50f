"""`commons users create|list`."""

from __future__ import annotations

import typer
from sqlalchemy import select

from commons.accounts.users import create_user
from commons.config import Settings
from commons.db.models import User
from commons.errors import CommonsError
from commons.services import build_services

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command()
def create(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="Make the user a hub administrator."),
    email: str | None = typer.Option(None, help="E-mail address."),
    fullname: str = typer.Option("", help="Display name."),
) -> None:
    """Create user NAME."""
    services = build_services(Settings())
    try:
        with services.session() as session:
            user = create_user(session, name, admin=admin, email=email, fullname=fullname)
            typer.echo(f"created user {user.name}" + (" (admin)" if admin else ""))
    except CommonsError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command("list")
def list_users() -> None:
    """List users."""
    services = build_services(Settings())
    with services.session() as session:
        for user in session.scalars(select(User).order_by(User.name)):
            flags = [f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on]
            typer.echo(user.name + (f" ({', '.join(flags)})" if flags else ""))


@app.command()
def disable(name: str, enable: bool = typer.Option(False, "--enable", help="Enable instead.")) -> None:
    """Disable user NAME: their tokens and sessions stop working at once."""
    from commons.accounts import audit
    from commons.accounts.sessions import close_all
    from commons.accounts.users import get_user

    services = build_services(Settings())
    with services.session() as session:
        user = get_user(session, name)
        if user is None:
            typer.echo(f"error: no user named {name!r}", err=True)
            raise typer.Exit(1)
        user.disabled = not enable
        if user.disabled:
            close_all(session, user)
    audit.record(services.sessions, "user.update", f"user:{name}", actor="operator", token="cli", namespace=name,
                 details={"disabled": not enable})
    typer.echo(f"{name} {'enabled' if enable else 'disabled'}")


@app.command()
def password(name: str) -> None:
    """Set user NAME's password for the web UI (asked for twice, never echoed)."""
    from commons.accounts.passwords import hash_password
    from commons.accounts.users import get_user

    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    services = build_services(Settings())
    try:
        with services.session() as session:
            user = get_user(session, name)
            if user is None:
                raise CommonsError(f"No user named {name!r}")
            user.password_hash = hash_password(secret)
    except CommonsError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"password of {name} set")
