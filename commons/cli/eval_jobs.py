"""`commons eval MODEL[@REV] --task hellaswag --task piqa [--limit N] [-f]`: queue an evaluation job.

A task is named alone (its data is the dataset repo `<COMMONS_EVAL_DATASETS_NAMESPACE>/<dataset>`,
where `commons evals import` puts benchmark folders) or with its dataset repo,
`--task my_quiz=alice/quiz@v2`. Like `commons jobs submit`, the job belongs to `--user` (default:
the model's namespace) and runs with that user's rights: a user who may not write to the model
gets a pull request with the results instead of a commit.
"""

from __future__ import annotations

import typer

from commons.cli.jobs import _fail, _follow, _job, _parse_set, _services, _user_actor, split_rev
from commons.errors import CommonsError
from commons.evals.submit import eval_spec, submit_eval


def _task(value: str, namespace: str) -> tuple[str, str, str | None]:
    """`NAME` or `NAME=NS/DATASET[@REV]` -> (task, dataset repo, revision)."""
    from commons.ml.eval.tasks import builtin_tasks

    name, sep, target = value.partition("=")
    if not name:
        raise typer.BadParameter(f"--task takes NAME or NAME=NS/DATASET[@REV], got {value!r}")
    if sep:
        repo, rev = split_rev(target)
        return name, repo, rev
    known = builtin_tasks()
    if name not in known:
        raise typer.BadParameter(f"{name!r} is not a built-in task ({', '.join(sorted(known))}); "
                                 f"name its dataset repo: --task {name}=NS/DATASET")
    return name, f"{namespace}/{known[name].dataset or name}", None


def eval_(
    model: str = typer.Argument(..., help="The model repo: ns/name, or ns/name@revision."),
    task: list[str] = typer.Option(..., "--task", "-t",
                                   help="A task: NAME, or NAME=NS/DATASET (NS/DATASET@REV for a revision)."),
    limit: int | None = typer.Option(None, help="At most this many items per task."),
    sample: str = typer.Option("first", help="Which items under --limit: first, or spread over the data."),
    set_: list[str] = typer.Option([], "--set", help="Another setting, e.g. --set max_new_tokens=32."),
    user: str | None = typer.Option(None, help="Owner of the job (default: the model's namespace)."),
    timeout: int | None = typer.Option(None, help="Seconds before the job is stopped (default 6 h)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show progress until the job ends, then the scores."),
) -> None:
    """Evaluate a model on tasks; the scores go to its card (or a pull request) and the leaderboard."""
    repo, rev = split_rev(model)
    services = _services()
    settings = {"limit": limit, "sample": sample, **_parse_set(set_)}
    tasks = [_task(t, services.settings.eval_datasets_namespace) for t in task]
    try:
        actor = _user_actor(services, user or repo.split("/")[0])
        with services.session() as session:
            job = submit_eval(session, services.storage, actor, eval_spec(repo, rev, tasks, settings), timeout)
            job_id = job.id
    except CommonsError as exc:
        raise _fail(exc) from None
    typer.echo(f"job {job_id} queued: " + ", ".join(f"{name} ({dataset})" for name, dataset, _ in tasks))
    if not follow:
        return
    try:
        _follow(services, job_id, logs=False)
        row = _job(services, job_id)
    except CommonsError as exc:
        raise _fail(exc) from None
    result = row["result"] or {}
    for key, value in (result.get("metrics") or {}).items():
        typer.echo(f"  {key}: {value}")
    if result.get("commit"):
        typer.echo(f"  written to {result['output_repo']}@{result['commit']}")
    if row["state"] != "succeeded":
        typer.echo(f"  error: {row['error']}", err=True)
        raise typer.Exit(1)
