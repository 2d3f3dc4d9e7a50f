"""The `commons` command: one module per command group."""

from __future__ import annotations

import typer

from commons.cli import (
    audit,
    db,
    demo,
    eval_jobs,
    evals,
    fit,
    importers,
    jobs,
    license,
    orgs,
    serve,
    serve_model,
    tokens,
    users,
)

app = typer.Typer(help="Commons: a self-hosted hub and workbench for open LLMs.", no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  add_completion=False)
app.command("serve")(serve.serve)
app.command("serve-model")(serve_model.serve_model)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(importers.app, name="import")
app.add_typer(orgs.app, name="orgs")
app.add_typer(audit.app, name="audit")
app.add_typer(license.app, name="license")
app.add_typer(jobs.app, name="jobs")
app.command("worker")(jobs.worker)
app.command("demo")(demo.demo)
app.add_typer(evals.app, name="evals")
app.command("eval")(eval_jobs.eval_)
app.command("fit")(fit.fit)


def main() -> None:
    app()
