"""The files a model server loads: a repo at a pinned commit, materialised from the hub's data directory.

A LoRA adapter repo (`adapter_config.json`) is served on its base, which the adapter names by repo
id and commit (as Commons' fine-tune jobs write it). Materialised trees are kept under
`$COMMONS_HOME/serving/models/<ns>--<name>/<commit>`: a commit never changes, so a restart reuses
them; each is written to a temporary sibling and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from commons.accounts.actors import Actor
from commons.hub.ids import RepoType
from commons.jobs.inputs import materialise, resolve_commit
from commons.services import Services
from commons.serving.llamacpp_engine import has_gguf

# Whoever runs `serve-model` owns the data directory, as for `commons import`: it reads any repo.
OPERATOR = Actor(user_id=0, name="operator", is_admin=True, role="read", token_name="cli")


@dataclass(frozen=True)
class ModelFiles:
    """What to load: the model directory, and the adapter directory when the repo is an adapter."""

    repo_id: str
    commit: str
    model_dir: Path
    adapter_dir: Path | None
    base: str | None  # "ns/name@commit" of the base when the repo is an adapter


def split_spec(spec: str) -> tuple[str, str]:
    """`ns/name[@rev]` -> (repo id, revision)."""
    repo_id, _, revision = spec.partition("@")
    return repo_id, revision or "main"


def _materialised(services: Services, repo_id: str, revision: str) -> tuple[str, Path]:
    with services.session() as session:
        commit = resolve_commit(session, services.storage, OPERATOR, RepoType.MODEL.value, repo_id, revision)
        target = services.settings.home / "serving" / "models" / repo_id.replace("/", "--") / commit
        if target.exists():
            return commit, target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{commit}.", dir=target.parent))
        try:
            materialise(session, services.storage, OPERATOR, RepoType.MODEL.value, repo_id, commit, tmp / "files")
            os.replace(tmp / "files", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return commit, target


def resolve_model(services: Services, spec: str) -> ModelFiles:
    """Materialise `spec` (and its base, for an adapter). Raises the hub's errors for unknown repos/revisions."""
    repo_id, revision = split_spec(spec)
    commit, folder = _materialised(services, repo_id, revision)
    adapter_config = folder / "adapter_config.json"
    if not adapter_config.exists():
        if not (folder / "config.json").exists() and not has_gguf(folder):
            raise ValueError(f"{repo_id}@{commit[:12]} has no config.json, GGUF file or adapter_config.json: "
                             "not a model this server can load")
        return ModelFiles(repo_id, commit, folder, None, None)
    config = json.loads(adapter_config.read_text())
    base_id = config.get("base_model_name_or_path")
    if not base_id or "/" not in str(base_id):
        raise ValueError(f"{repo_id}'s adapter_config.json does not name its base as 'namespace/name'")
    base_commit, base_folder = _materialised(services, str(base_id), str(config.get("revision") or "main"))
    return ModelFiles(repo_id, commit, base_folder, folder, f"{base_id}@{base_commit}")
