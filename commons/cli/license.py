"""`commons license check|explain|notice REPO`: what may I do with this model, and why."""

from __future__ import annotations

import json

import typer

from commons.accounts.actors import Actor
from commons.config import Settings
from commons.errors import CommonsError
from commons.hub import license_facts
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.policy import Mode, Question, Verdict, ask, evaluate, notice_text, suggest_license, to_jsonable
from commons.services import build_services

app = typer.Typer(help="License, lineage and obligations of a repo.", no_args_is_help=True)
OPERATOR = Actor(user_id=0, name="operator", is_admin=True, role="write", token_name="cli")


def _decide(repo_id: str, dataset: bool, revision: str, mode: str | None):  # type: ignore[no-untyped-def]
    services = build_services(Settings())
    with services.session() as session:
        repos = Repos(session, services.storage)
        kind = RepoType.DATASET if dataset else RepoType.MODEL
        repo = repos.get(OPERATOR, RepoRef.parse(kind, repo_id), Need.SEE)
        lineage, root = license_facts.gather(repos, OPERATOR, repo, revision)
        chosen = Mode(mode) if mode else license_facts.policy_for(session, repo.namespace).mode
        return evaluate(lineage, root, mode=chosen), lineage, root


def _run(repo_id: str, dataset: bool, revision: str, mode: str | None):  # type: ignore[no-untyped-def]
    try:
        return _decide(repo_id, dataset, revision, mode)
    except (CommonsError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from None


@app.command()
def check(
    repo_id: str,
    dataset: bool = typer.Option(False, "--dataset", help="REPO_ID is a dataset."),
    revision: str = typer.Option("main", help="Branch, tag or commit."),
    mode: str | None = typer.Option(None, help="strict or lenient (default: the namespace's policy)."),
    as_json: bool = typer.Option(False, "--json", help="The full decision as JSON."),
) -> None:
    """The verdict and the effective terms; exit 1 on a conflict or block."""
    decision, lineage, root = _run(repo_id, dataset, revision, mode)
    if as_json:
        typer.echo(json.dumps(to_jsonable(decision), indent=2))
    else:
        typer.echo(f"{repo_id}: {decision.verdict.value} (declared {decision.declared_license or 'nothing'}, "
                   f"{decision.mode.value} mode, engine {decision.engine_version})")
        for q in (Question.COMMERCIAL_USE, Question.OFFER_AS_SERVICE, Question.REDISTRIBUTE,
                  Question.REDISTRIBUTE_QUANTIZED):
            a = ask(lineage, root, q, mode=decision.mode)
            extra = f" (conditions: {len(a.conditions)}; see `commons license explain`)" if a.conditions else ""
            typer.echo(f"  {q.value.replace('_', ' ')}: {a.answer.value}{extra}")
        for conflict in decision.conflicts:
            typer.echo(f"  ! {conflict.severity.value}: {conflict.message}")
        typer.echo(f"  suggested license field: {suggest_license(decision).card_fields()}")
    if decision.verdict in (Verdict.CONFLICT, Verdict.BLOCKED):
        raise typer.Exit(1)


@app.command()
def explain(
    repo_id: str,
    dataset: bool = typer.Option(False, "--dataset", help="REPO_ID is a dataset."),
    revision: str = typer.Option("main", help="Branch, tag or commit."),
    mode: str | None = typer.Option(None, help="strict or lenient."),
) -> None:
    """Every line of the decision with its reasons: the ancestor, its license and the clause."""
    decision, _, _ = _run(repo_id, dataset, revision, mode)
    for text, reasons in decision.lines():
        typer.echo(text)
        for r in reasons:
            via = " <- ".join(r.path)
            typer.echo(f"    because {r.ancestor} is {r.license_id}: {r.clause}" + (f" (via {via})" if via else ""))


@app.command()
def notice(
    repo_id: str,
    dataset: bool = typer.Option(False, "--dataset", help="REPO_ID is a dataset."),
    revision: str = typer.Option("main", help="Branch, tag or commit."),
) -> None:
    """The NOTICE / attribution text a derivative of REPO_ID must carry."""
    typer.echo(notice_text(_run(repo_id, dataset, revision, None)[0]))
