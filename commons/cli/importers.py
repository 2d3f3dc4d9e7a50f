"""`commons import gguf|dataset`: bring local model and data files into the hub."""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import typer
import yaml
from tqdm import tqdm

from commons import __version__
from commons.accounts.actors import Actor
from commons.accounts.users import get_user
from commons.config import Settings
from commons.errors import CommonsError
from commons.hub.ids import RepoRef, RepoType
from commons.hub.publish import commit_directory
from commons.hub.repos import Need, Repos
from commons.hub.trees import file_info
from commons.services import Services, build_services

app = typer.Typer(help="Import local files into the hub.", no_args_is_help=True)

PROVENANCE = "conversion.json"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _operator(services: Services, namespace: str) -> Actor:
    """The local operator acts as the namespace's owner (whoever runs the CLI owns the data directory)."""
    with services.session() as session:
        user = get_user(session, namespace)
        if user is None:
            raise CommonsError(f"No user named {namespace!r}: create it with `commons users create {namespace}`")
        return Actor(user_id=user.id, name=user.name, is_admin=True, role="write", token_name="cli")


def _existing_source(services: Services, actor: Actor, ref: RepoRef) -> dict[str, Any] | None:
    """The provenance of the last import into `ref`, if any (that is what makes imports idempotent)."""
    with services.session() as session:
        repos = Repos(session, services.storage)
        repo = repos.find(ref)
        if repo is None:
            return None
        git = repos.git(repo)
        info = file_info(git, git.resolve("main"), PROVENANCE)
        if info is None or info.lfs is not None:
            return None
        loaded: dict[str, Any] = json.loads(git.read_blob(info.oid))
        return loaded


def _publish(services: Services, actor: Actor, ref: RepoRef, folder: Path, message: str, private: bool) -> str:
    with services.session() as session:
        repos = Repos(session, services.storage)
        repo = repos.find(ref) or repos.create(actor, ref, private=private)
        session.commit()
        repo = repos.get(actor, ref, Need.WRITE)
        result = commit_directory(session, services.storage, repo, repos.git(repo), actor, folder, message,
                                  delete_missing=True)
        return result.oid


def gguf_card(report: Any, repo_id: str, source: str, license_: str, base_model: str | None) -> str:
    """A model card that says exactly what the files are and how they were made."""
    meta: dict[str, Any] = {
        "license": license_,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["gguf-import", report.architecture],
    }
    if report.metadata.get("languages"):
        langs = report.metadata["languages"]
        meta["language"] = langs if isinstance(langs, list) else [s.strip(" '[]") for s in str(langs).split(",")]
    if base_model:
        meta["base_model"] = base_model
        meta["base_model_relation"] = "quantized"
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    name = repo_id.split("/")[1]
    return f"""---
{front}---

# {name}

{report.metadata.get("name", name)}: a {report.architecture} causal language model with
{report.n_params / 1e6:.1f} M parameters, in the standard transformers layout (`config.json`,
`model.safetensors`, tokenizer files with the chat template).

## How these files were made

They were converted by `commons import gguf` (Commons {__version__}) from the GGUF file
**{source}** (sha256 `{report.source_sha256}`, {report.source_size:,} bytes){
f", a quantized copy of [{base_model}]({base_model})" if base_model else ""}.

- Tensor types in the source: {report.quantization}.
- Every tensor was dequantized to float32 with the `gguf` library; the query and key projections
  were un-permuted (llama.cpp stores them in an interleaved rotary layout).
- The tokenizer and chat template were rebuilt from the GGUF metadata.

**The weights are therefore exactly the values of the quantized GGUF, stored as float32, not the
original release.** Quantization error is baked in: expect the quality of the GGUF file (for a
4-bit file, somewhat higher perplexity than the original bf16 model), at the size of float32.
`{PROVENANCE}` records the source, tool versions and the sha256 of every file.

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
model = AutoModelForCausalLM.from_pretrained("{repo_id}")
```
with `HF_ENDPOINT` pointing at this hub.
"""


def import_gguf_file(
    services: Services, path: Path, repo_id: str, license_: str | None = None, base_model: str | None = None,
    private: bool = False, force: bool = False,
) -> str | None:
    """Convert and commit; returns the new commit, or None when this exact file was already imported."""
    from commons.ml.gguf_convert import convert_gguf  # numpy + gguf: only when importing

    ref = RepoRef.parse(RepoType.MODEL, repo_id)
    actor = _operator(services, ref.namespace)
    source_sha = _sha256(path)
    previous = _existing_source(services, actor, ref)
    if previous and previous.get("source", {}).get("sha256") == source_sha and not force:
        typer.echo(f"{repo_id}: already imported from this file (sha256 {source_sha[:12]}…), nothing to do", err=True)
        return None
    with tempfile.TemporaryDirectory(dir=services.settings.tmp_dir) as tmp:
        out = Path(tmp) / "model"
        bar = tqdm(total=0, unit="tensor", desc=f"converting {path.name}", leave=False)

        def progress(done: int, total: int, name: str) -> None:
            bar.total = total
            bar.set_postfix_str(name[:30], refresh=False)
            bar.update(done - bar.n)

        report = convert_gguf(path, out, progress)
        bar.close()
        license_ = license_ or report.metadata.get("license") or "other"
        (out / "README.md").write_text(gguf_card(report, repo_id, path.name, license_, base_model))
        provenance = {
            "tool": f"commons import gguf {__version__}",
            "source": {"file": path.name, "sha256": report.source_sha256, "size": report.source_size,
                       "quantization": report.quantization, "metadata": report.metadata},
            "output": {"dtype": "float32", "parameters": report.n_params, "files": {}},
            "libraries": {p: _version(p) for p in ("gguf", "numpy", "safetensors", "tokenizers", "transformers")},
        }
        for f in sorted(p for p in out.rglob("*") if p.is_file()):
            provenance["output"]["files"][f.relative_to(out).as_posix()] = _sha256(f)  # type: ignore[index]
        (out / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
        typer.echo(f"{repo_id}: committing {len(report.files) + 2} files", err=True)
        return _publish(services, actor, ref, out, f"Import {path.name} (converted from GGUF)", private)


def _sha256(path: Path) -> str:
    from commons.storage.digests import file_digests

    return file_digests(path)[0]


@app.command("gguf")
def gguf_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .gguf file (Llama architecture)."),
    repo_id: str = typer.Argument(..., help="Target model repo, namespace/name. The namespace user must exist."),
    license_: str | None = typer.Option(None, "--license", help="License id (default: from the GGUF metadata)."),
    base_model: str | None = typer.Option(None, help="Repo id of the model this GGUF was quantized from."),
    private: bool = typer.Option(False, help="Create the repo private."),
    force: bool = typer.Option(False, help="Import even if this exact file was imported already."),
) -> None:
    """Convert a GGUF file to a transformers model (float32 safetensors + tokenizer) and commit it."""
    services = build_services(Settings())
    try:
        oid = import_gguf_file(services, path, repo_id, license_, base_model, private, force)
    except (CommonsError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    if oid:
        typer.echo(f"{repo_id}: imported at commit {oid}")
