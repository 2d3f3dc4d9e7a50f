"""`commons audit verify|export`."""

from __future__ import annotations

import sys

import typer

from commons.accounts import audit
from commons.config import Settings
from commons.services import build_services

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Check the hash chain; exit 1 and name the first bad row if it was tampered with."""
    services = build_services(Settings())
    with services.session() as session:
        result = audit.verify(session)
    if result.ok:
        typer.echo(f"audit log intact: {result.rows} events")
        return
    typer.echo(f"audit log TAMPERED at row {result.bad_row}: {result.reason}", err=True)
    raise typer.Exit(1)


@app.command()
def export(namespace: str | None = typer.Option(None, help="Only this user's or organisation's events.")) -> None:
    """Write the log as JSON lines to standard output."""
    services = build_services(Settings())
    with services.session() as session:
        for line in audit.export_jsonl(session, namespace):
            sys.stdout.write(line)
