"""`commons db upgrade|downgrade`."""

from __future__ import annotations

import typer

from commons.config import Settings
from commons.db import migrate

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.sqlalchemy_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base.")) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(Settings().sqlalchemy_url, revision)
    typer.echo(f"database at {revision}")
