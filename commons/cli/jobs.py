"""`commons jobs submit|list|show|logs|cancel|reproduce` and `commons worker`.

Like the other commands, these act on the data directory directly, as its operator: they see and
cancel every job. A submitted job belongs to `--user` (default: the output repo's namespace) and
runs with that user's rights.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import typer
import yaml
from tqdm import tqdm

from commons.accounts.actors import Actor
from commons.accounts.tokens import actor_for
from commons.accounts.users import get_user
from commons.config import Settings
from commons.db.models import Job
from commons.errors import CommonsError
from commons.jobs.service import Jobs, event_json, job_json
from commons.jobs.states import JobState
from commons.services import Services, build_services

app = typer.Typer(help="Fine-tune and other jobs: submit, follow, cancel, reproduce.", no_args_is_help=True)


def _services() -> Services:
    return build_services(Settings())


def _operator(services: Services) -> Actor:
    """Whoever runs the CLI owns the data directory: an administrator for reading and cancelling."""
    return Actor(user_id=0, name="operator", is_admin=True, role="write", token_name="cli")


def _user_actor(services: Services, name: str) -> Actor:
    with services.session() as session:
        user = get_user(session, name)
        if user is None:
            raise CommonsError(f"No user named {name!r}: create it with `commons users create {name}`")
        return actor_for(session, user, "write", token_name="cli")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
    return typer.Exit(1)


def split_rev(value: str) -> tuple[str, str | None]:
    """`ns/name@rev` -> (`ns/name`, `rev`); no `@`: revision None (main)."""
    repo, _, rev = value.partition("@")
    return repo, rev or None


def _parse_set(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set takes key=value, got {item!r}")
        # JSON scalars: 8 -> int, 2e-4 -> float, true -> bool, null; anything else (q_proj,v_proj) stays a string.
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


@app.command("submit")
def submit(
    base: str | None = typer.Option(None, help="Base model repo, ns/name[@revision]."),
    dataset: str | None = typer.Option(None, help="Dataset repo, ns/name[@revision]."),
    output: str | None = typer.Option(None, help="New model repo for the outputs, ns/name."),
    recipe: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Recipe as JSON or YAML."),
    set_: list[str] = typer.Option([], "--set", help="Recipe field, e.g. --set rank=16 --set max_steps=100."),
    spec_file: Path | None = typer.Option(None, "--spec", exists=True, dir_okay=False,
                                          help="A whole spec (JSON/YAML) instead of the options above."),
    user: str | None = typer.Option(None, help="Owner of the job (default: the output namespace)."),
    private: bool = typer.Option(False, help="Create the output repo private."),
    timeout: int | None = typer.Option(None, help="Seconds before the job is stopped (default 6 h)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show progress until the job ends."),
    kind: str | None = typer.Option(None, help="Job kind (default: the spec file's `kind`, else finetune)."),
) -> None:
    """Queue a job: by default a LoRA fine-tune of BASE on DATASET, published as OUTPUT."""
    spec: dict[str, Any] = yaml.safe_load(spec_file.read_text()) if spec_file else {}
    kind = kind or str(spec.pop("kind", None) or "finetune")
    for name, value in (("base", base), ("dataset", dataset)):
        if value:
            repo, rev = split_rev(value)
            spec[name] = {"repo_id": repo, **({"revision": rev} if rev else {})}
    if output:
        spec["output_repo"] = output
    if private:
        spec["private"] = True
    recipe_data = dict(spec.get("recipe") or {})
    if recipe:
        recipe_data |= yaml.safe_load(recipe.read_text()) or {}
    recipe_data |= _parse_set(set_)
    spec["recipe"] = recipe_data
    owner = user or str(spec.get("output_repo") or "").split("/")[0]
    if not owner:
        raise typer.BadParameter("name the owner with --user (or give --output ns/name)")
    services = _services()
    try:
        actor = _user_actor(services, owner)
        with services.session() as session:
            job = Jobs(session, services.storage).submit(actor, kind, spec, timeout)
            job_id = job.id
    except CommonsError as exc:
        raise _fail(exc) from None
    typer.echo(f"job {job_id} queued")
    if follow:
        _follow(services, job_id, logs=False)


@app.command("list")
def list_(
    state: str | None = typer.Option(None, help="queued, running, succeeded, failed or cancelled."),
    limit: int = typer.Option(30, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Jobs, newest first."""
    services = _services()
    with services.session() as session:
        jobs = Jobs(session, services.storage)
        try:
            rows = [job_json(j, jobs.owner_name(j)) for j in jobs.list_jobs(_operator(services), state, True, limit)]
        except CommonsError as exc:
            raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        progress = row["progress"]
        where = f"{progress.get('step', 0)}/{progress.get('total', '?')}" if progress.get("total") else ""
        output = row["spec"].get("output_repo") or "-"
        typer.echo(f"{row['id']:>5}  {row['state']:<9}  {row['kind']:<9}  {row['owner'] or '-':<12}  "
                   f"{output:<32}  {where}")


def _job(services: Services, job_id: int) -> dict[str, Any]:
    with services.session() as session:
        jobs = Jobs(session, services.storage)
        job = jobs.get(_operator(services), job_id)
        return job_json(job, jobs.owner_name(job))


def _inputs(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every repo a spec reads, by field name (an evaluation's task datasets as `task:NAME`)."""
    found = [(name, value) for name, value in spec.items() if isinstance(value, dict) and "repo_id" in value]
    for task in spec.get("tasks") or []:
        if isinstance(task, dict) and isinstance(task.get("dataset"), dict):
            found.append((f"task:{task.get('name', '?')}", task["dataset"]))
    return found


@app.command("show")
def show(job_id: int, follow: bool = typer.Option(False, "--follow", "-f", help="Progress bar until it ends."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """A job's spec, state, progress and result."""
    services = _services()
    try:
        if follow:
            _follow(services, job_id, logs=False)
        row = _job(services, job_id)
    except CommonsError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    spec = row["spec"]
    typer.echo(f"job {row['id']} ({row['kind']}) by {row['owner']}: {row['state']}"
               f"{' (cancel requested)' if row['cancelRequested'] and row['state'] == 'running' else ''}")
    for name, given in _inputs(spec):
        typer.echo(f"  {name:<8} {given['repo_id']}@{given.get('revision')}")
    typer.echo(f"  output   {spec.get('output_repo') or '(none)'}")
    typer.echo(f"  attempts {row['attempts']}/{row['maxAttempts']}, created {row['createdAt']}, "
               f"finished {row['finishedAt'] or '-'}")
    progress = row["progress"]
    if progress.get("total"):
        typer.echo(f"  progress step {progress.get('step')}/{progress['total']}, loss {progress.get('loss')}, "
                   f"{progress.get('tokens_per_s')} tokens/s, phase {progress.get('phase')}")
    if row["error"]:
        typer.echo(f"  error    {row['error']}")
    result = row["result"] or {}
    if result.get("commit"):
        typer.echo(f"  published {result['output_repo']}@{result['commit']}")
    for key, value in (result.get("metrics") or {}).items():
        typer.echo(f"    {key}: {value}")


@app.command("logs")
def logs(job_id: int, follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
         everything: bool = typer.Option(False, "--all", help="Also progress points and stderr lines.")) -> None:
    """A job's log lines and metrics (and, with --all, every event)."""
    services = _services()
    try:
        if follow:
            _follow(services, job_id, logs=True, everything=everything)
            return
        with services.session() as session:
            for event in Jobs(session, services.storage).events(_operator(services), job_id, 0, 100_000):
                line = _event_line(event_json(event), everything)
                if line:
                    typer.echo(line)
    except CommonsError as exc:
        raise _fail(exc) from None


@app.command("cancel")
def cancel(job_id: int) -> None:
    """Cancel a queued or running job."""
    services = _services()
    try:
        with services.session() as session:
            state = Jobs(session, services.storage).cancel(_operator(services), job_id)
    except CommonsError as exc:
        raise _fail(exc) from None
    typer.echo(f"job {job_id}: {'cancelled' if state is JobState.CANCELLED else 'cancel requested'}")


@app.command("reproduce")
def reproduce(target: str = typer.Argument(..., help="A fine-tuned model repo, ns/name[@revision]."),
              as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Rerun the recipe recorded in a repo's provenance.json and compare the outputs."""
    from commons.jobs.reproduce import reproduce as run_reproduction

    repo_id, rev = split_rev(target)
    services = _services()
    bar = tqdm(total=0, unit="step", desc="reproducing", leave=False)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "progress":
            bar.total = data.get("total") or bar.total
            bar.set_postfix(loss=f"{data.get('loss', 0):.4f}", refresh=False)
            bar.update(int(data.get("step", 0)) - bar.n)
        elif kind == "log" and data.get("level") != "stderr":
            bar.write(f"  {data.get('message')}")

    try:
        report = run_reproduction(services, _operator(services), repo_id, rev or "main", on_event=on_event)
    except CommonsError as exc:
        raise _fail(exc) from None
    finally:
        bar.close()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.summary())
    raise typer.Exit(0 if report.verdict != "differs" else 2)


def _event_line(event: dict[str, Any], everything: bool) -> str | None:
    data, kind, at = event["data"], event["kind"], (event["at"] or "")[11:19]
    if kind == "state":
        return f"{at} state {data.get('state')}" + (f": {data['error']}" if data.get("error") else "")
    if kind == "metric":
        return f"{at} metric {data.get('name')} = {data.get('value')}"
    if kind == "log" and (everything or data.get("level") != "stderr"):
        return f"{at} {data.get('level', 'info'):<7} {data.get('message')}"
    if kind == "progress" and everything:
        return f"{at} step {data.get('step')}/{data.get('total')} loss {data.get('loss')}"
    return None


def _follow(services: Services, job_id: int, logs: bool, everything: bool = False) -> None:
    """Poll the job until it ends: a progress bar (tqdm) with log lines above it."""
    operator = _operator(services)
    after = 0
    bar: tqdm[Any] | None = None
    state = ""
    while True:
        with services.session() as session:
            jobs = Jobs(session, services.storage)
            job: Job = jobs.get(operator, job_id)
            state, progress = job.state, dict(job.progress or {})
            events = [event_json(e) for e in jobs.events(operator, job_id, after, 5000)]
        for event in events:
            after = event["id"]
            line = _event_line(event, everything)
            if line and (logs or event["kind"] in ("state", "metric")
                         or event["data"].get("level") in ("warning", "error")):
                (bar.write if bar is not None else typer.echo)(line)
        if not logs and progress.get("total"):
            if bar is None:
                bar = tqdm(total=int(progress["total"]), unit="step", desc=f"job {job_id}", dynamic_ncols=True)
            loss = progress.get("loss")
            bar.set_postfix_str(f"loss {loss:.4f}, {progress.get('tokens_per_s', 0):.0f} tok/s"
                                if isinstance(loss, int | float) else "", refresh=False)
            bar.update(int(progress.get("step", 0)) - bar.n)
        if JobState(state).terminal:
            break
        time.sleep(0.5)
    if bar is not None:
        bar.close()
    typer.echo(f"job {job_id}: {state}")


def worker(
    heartbeat: float | None = typer.Option(None, help="Seconds between heartbeats (default 5)."),
    once: bool = typer.Option(False, help="Run at most one job, then exit."),
) -> None:
    """Run jobs from the queue in this process (in addition to, or instead of, the one in `commons serve`)."""
    from commons.jobs.worker import Worker, WorkerOptions

    services = _services()
    overrides: dict[str, Any] = {"heartbeat_s": heartbeat} if heartbeat else {}
    runner = Worker(services, WorkerOptions.from_settings(services.settings, **overrides))

    def stop(signum: int, _frame: Any) -> None:
        typer.echo(f"worker {runner.name}: stopping (signal {signum}); a running job is re-queued", err=True)
        runner.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"worker {runner.name} on {services.settings.home} ({runner.options.backend})", err=True)
    if once:
        runner.run_once()
    else:
        runner.run()
