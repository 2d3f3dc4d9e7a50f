"""`commons tokens create|list|revoke`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from commons.accounts import tokens
from commons.accounts.users import get_user
from commons.config import Settings
from commons.errors import CommonsError
from commons.services import build_services

app = typer.Typer(help="Access tokens (shown once, stored hashed).", no_args_is_help=True)


@app.command()
def create(
    user: str,
    write: bool = typer.Option(False, "--write", help="Allow writes (default: read-only)."),
    name: str = typer.Option("cli", help="A label to tell tokens apart."),
    expires_days: int | None = typer.Option(None, help="Expire after this many days."),
    scope: list[str] = typer.Option(
        [], help="Fine-grained: RESOURCE=ACTIONS, e.g. model:acme/m=read,write or acme=read (repeatable)."
    ),
) -> None:
    """Create a token for USER. The token alone is printed on the last line."""
    services = build_services(Settings())
    with services.session() as session:
        account = get_user(session, user)
        if account is None:
            typer.echo(f"error: no user named {user!r}", err=True)
            raise typer.Exit(1)
        expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
        scopes = None
        if scope:
            scopes = [{"resource": s.split("=", 1)[0], "actions": s.split("=", 1)[1].split(",")} for s in scope
                      if "=" in s]
        role = "fine-grained" if scopes else ("write" if write else "read")
        try:
            secret = tokens.issue_token(session, account, name, role, expires, scopes)
        except CommonsError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"token {name!r} for {user} ({role}); it is shown only once:", err=True)
    typer.echo(secret)


@app.command("list")
def list_tokens(user: str) -> None:
    """List USER's tokens (names and prefixes, never the secrets)."""
    services = build_services(Settings())
    with services.session() as session:
        account = get_user(session, user)
        if account is None:
            raise typer.Exit(1)
        for t in account.tokens:
            state = "revoked" if t.revoked_at else "active"
            typer.echo(f"{t.name}\t{t.role}\t{t.prefix}…\t{state}")


@app.command()
def revoke(user: str, name: str) -> None:
    """Revoke USER's tokens labelled NAME."""
    services = build_services(Settings())
    with services.session() as session:
        account = get_user(session, user)
        if account is None:
            raise typer.Exit(1)
        typer.echo(f"revoked {tokens.revoke_token(session, account, name)} token(s)")
