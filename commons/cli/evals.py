"""`commons evals ...`: benchmark data into dataset repos, and the evaluation tasks Commons knows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from commons.cli.importers import _operator
from commons.config import Settings
from commons.errors import CommonsError
from commons.services import build_services

app = typer.Typer(help="Evaluation: import benchmark data, list tasks.", no_args_is_help=True)


def _benchmark_folders(paths: list[Path]) -> list[Path]:
    """Each path is a benchmark folder (it has a PROVENANCE.md) or a folder of them."""
    from commons.evals.importer import PROVENANCE_FILE

    folders: list[Path] = []
    for path in paths:
        if (path / PROVENANCE_FILE).is_file():
            folders.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_dir() and (p / PROVENANCE_FILE).is_file())
        if not found:
            raise typer.BadParameter(f"{path}: no {PROVENANCE_FILE} in it or in its subfolders")
        folders += found
    return folders


@app.command("import")
def import_command(
    paths: list[Path] = typer.Argument(..., exists=True, file_okay=False,
                                       help="Benchmark folders (data files + PROVENANCE.md), or folders of them."),
    namespace: str = typer.Option(..., "--namespace", "-n", help="User or org the dataset repos go to."),
    name: str | None = typer.Option(None, help="Repo name (one folder only; default: the folder's name)."),
    private: bool = typer.Option(False, help="Create the repos private."),
) -> None:
    """Import benchmark folders as dataset repos: files byte for byte, a card with license and source, tasks."""
    from commons.evals.importer import build_dataset_dir, publish_dataset

    folders = _benchmark_folders(paths)
    if name and len(folders) != 1:
        raise typer.BadParameter("--name needs exactly one benchmark folder")
    services = build_services(Settings())
    try:
        actor = _operator(services, namespace)
        for folder in folders:
            repo_id = f"{namespace}/{name or folder.name}"
            with tempfile.TemporaryDirectory(dir=services.settings.tmp_dir) as tmp:
                report = build_dataset_dir(folder, Path(tmp) / "repo", name=name or folder.name)
                for warning in report.warnings:
                    typer.echo(f"{repo_id}: warning: {warning}", err=True)
                with services.session() as session:
                    oid, changed = publish_dataset(session, services.storage, actor, repo_id, Path(tmp) / "repo",
                                                   private=private, message=f"Import benchmark data {folder.name}")
            state = "imported" if changed else "unchanged"
            typer.echo(f"{repo_id}@{oid}  {state}  {report.license_id}  {len(report.files)} files  "
                       f"tasks: {', '.join(report.tasks) or '-'}")
    except (CommonsError, ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    finally:
        services.close()


@app.command("tasks")
def tasks_command() -> None:
    """List the built-in evaluation tasks (name, type, dataset, metrics)."""
    from commons.ml.eval.tasks import builtin_tasks

    for task in builtin_tasks().values():
        typer.echo(f"{task.name:<16} {task.type:<20} {task.dataset or '-':<16} {', '.join(task.metric_names)}")
