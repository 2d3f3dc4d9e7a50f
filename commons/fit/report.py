"""Hardware fit of a hub repo and its quantized children, from file headers read out of the blob store.

Only headers are read (a safetensors JSON header, a GGUF header): never a weight. Headers are cached
by content address (sha256 or git oid), so a page view after the first costs no I/O.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, select

from commons.accounts.actors import Actor
from commons.accounts.permissions import can_see
from commons.db.models import Repo
from commons.fit.estimate import Fit, Machine, Shape, fit, precision_table
from commons.fit.variants import gguf_variant, safetensors_variant, shape_from_config
from commons.hub.gitrepo import GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.reading import open_file
from commons.hub.repos import Need, Repos
from commons.hub.trees import FileInfo, list_files
from commons.scanning.gguf import GgufError, GgufHeader, read_gguf_header
from commons.scanning.safetensors import SafetensorsError, SafetensorsHeader, read_safetensors_header

MAX_CHILDREN = 50
MAX_WEIGHT_FILES = 256  # per repo: beyond this, a repo is not something to size on a laptop anyway
_CACHE_SIZE = 512


@dataclass(frozen=True)
class FitReport:
    repo_id: str
    commit: str
    n_params: int | None  # of the repo's own (first) variant
    shape: Shape | None
    precisions: dict[str, int]  # bytes of the weights at common precisions
    machine: Machine
    fits: list[Fit]  # the repo's variants first, then its quantized children's

    def to_json(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "commit": self.commit, "n_params": self.n_params,
                "shape": None if self.shape is None else {"layers": self.shape.layers, "kv_heads": self.shape.kv_heads,
                                                           "head_dim": self.shape.head_dim,
                                                           "max_context": self.shape.max_context},
                "precisions": self.precisions,
                "machine": {"ram_bytes": self.machine.ram_bytes, "bandwidth_bytes_per_s": self.machine.bandwidth},
                "variants": [f.to_json() for f in self.fits]}


class _HeaderCache:
    """Parsed headers by content address (thread-safe LRU); a blob's header never changes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: str, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_headers = _HeaderCache(_CACHE_SIZE)


def _header(repos: Repos, git: GitRepo, info: FileInfo) -> GgufHeader | SafetensorsHeader | None:
    key = info.lfs.sha256 if info.lfs is not None else info.oid
    cached = _headers.get(key)
    if cached is not None:
        return cached if cached != "bad" else None
    header: GgufHeader | SafetensorsHeader | None
    try:
        with open_file(repos.storage, git, info) as fh:
            header = (read_gguf_header(fh, info.size) if info.path.endswith(".gguf")
                      else read_safetensors_header(fh, info.size))
    except (GgufError, SafetensorsError, OSError):
        header = None
    _headers.put(key, header if header is not None else "bad")
    return header


def _config(git: GitRepo, files: dict[str, FileInfo], folder: str) -> dict[str, Any] | None:
    info = files.get(f"{folder}/config.json" if folder else "config.json")
    if info is None or info.lfs is not None or info.size > 1 << 20:
        return None
    try:
        data = json.loads(git.read_blob(info.oid))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def repo_variants(repos: Repos, repo: Repo, commit: str) -> list[Any]:
    """Every GGUF file and every safetensors checkpoint (grouped by folder) of `repo` at `commit`."""
    git = repos.git(repo)
    files = {f.path: f for f in list_files(git, commit, recursive=True) if f.type == "file"}
    weights = [f for f in files.values() if f.path.endswith((".gguf", ".safetensors"))][:MAX_WEIGHT_FILES]
    variants: list[Any] = []
    folders: dict[str, list[SafetensorsHeader]] = {}
    for info in sorted(weights, key=lambda f: f.path):
        header = _header(repos, git, info)
        if isinstance(header, GgufHeader):
            variants.append(gguf_variant(repo.repo_id, info.path, header, info.size))
        elif isinstance(header, SafetensorsHeader):
            folder = info.path.rpartition("/")[0]
            if folder.endswith("adapter") or info.path.endswith("adapter_model.safetensors"):
                continue  # a LoRA adapter is not a model one can run alone
            folders.setdefault(folder, []).append(header)
    for folder, headers in sorted(folders.items()):
        variants.append(safetensors_variant(repo.repo_id, folder, headers, _config(git, files, folder)))
    return variants


def quantized_children(repos: Repos, actor: Actor | None, repo_id: str) -> list[Repo]:
    """Model repos whose card says `base_model: repo_id` with `base_model_relation: quantized`, visible to actor."""
    tag = f"base_model:quantized:{repo_id}"
    # The LIKE narrows the scan in SQL (JSON rendered as text on SQLite and PostgreSQL); the exact test follows.
    rows = repos.session.scalars(select(Repo).where(Repo.type == RepoType.MODEL.value,
                                                    cast(Repo.tags, String).like(f'%"{tag}"%'))
                                 .order_by(Repo.namespace, Repo.name).limit(4 * MAX_CHILDREN))
    children = [r for r in rows if tag in (r.tags or []) and not r.disabled and can_see(actor, repos.access(actor, r))]
    return children[:MAX_CHILDREN]


def fit_report(repos: Repos, actor: Actor | None, ref: RepoRef, revision: str, machine: Machine,
               context: int | None = None, children: bool = True) -> FitReport:
    """Which variants of `ref` (and of its quantized children, at their heads) fit `machine`, and how fast."""
    repo = repos.get(actor, ref, Need.SEE)
    commit = repos.git(repo).resolve(revision)
    own = repo_variants(repos, repo, commit)
    variants = list(own)
    if children and ref.type is RepoType.MODEL:
        for child in quantized_children(repos, actor, repo.repo_id):
            head = repos.git(child).ref_target("refs/heads/main")
            if head is not None:
                variants += repo_variants(repos, child, head)
    shape = next((v.shape for v in own if v.shape is not None), None)
    if shape is None:
        shape = shape_from_config(_config(repos.git(repo), {f.path: f for f in list_files(repos.git(repo), commit)
                                                             if f.type == "file"}, ""))
    n_params = own[0].n_params if own else None
    return FitReport(repo.repo_id, commit, n_params, shape, precision_table(n_params) if n_params else {}, machine,
                     [fit(v, machine, context) for v in variants])
