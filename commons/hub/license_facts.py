"""Gather what the policy engine needs about a repo and its ancestry from this hub.

The policy room is pure: it gets facts and returns decisions. This module is the one place that
reads cards, `provenance.json`, LICENSE and NOTICE files and the evidence in weight files out of
git (or out of a job's output folder, before it becomes a repo), follows `referenced_repos`
breadth-first through the hub, and keeps ancestors that are not hosted here by id.

File evidence: `adapter_config.json` (also under `adapter/`), `config.json` quantization, the
`general.*` metadata of a GGUF file, and the tensors of safetensors files compared with those of
each claimed base model: names and shapes from the headers, then the bytes of same-shaped tensors
(whole files by their LFS sha256 when equal, else hashed within `HASH_BUDGET` bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.site import get_setting_for
from commons.db.models import Repo
from commons.errors import CommonsError
from commons.hub.cards import CardError, split_front_matter
from commons.hub.gitrepo import GitRepo
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.hub.storage import HubStorage
from commons.hub.trees import FileInfo, list_files
from commons.policy import (
    Decision,
    EdgeKind,
    Lineage,
    Mode,
    RepoFacts,
    RepoKind,
    TensorComparison,
    build_lineage,
    evaluate,
    evidence_from_files,
    identify_license_text,
    referenced_repos,
)
from commons.policy import RepoRef as PolicyRef
from commons.policy.lineage import card_edges, provenance_edges
from commons.scanning.gguf import GgufArray, GgufError, read_gguf_header
from commons.scanning.safetensors import SafetensorsError, read_safetensors_header

MAX_REPOS = 200
MAX_TEXT = 1_000_000
HASH_BUDGET = 64 << 20  # bytes of tensor data hashed per comparison (both sides together)
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license.txt")


class _Files(Protocol):
    """The files of one revision: a git commit, or a local folder (a job's outputs)."""

    @property
    def key(self) -> str | None:
        """Stable identity of the content (repo key + commit), for the cache; None: do not cache."""

    def paths(self) -> dict[str, int]: ...
    def text(self, path: str) -> str | None: ...
    def open(self, path: str) -> AbstractContextManager[BinaryIO]: ...
    def sha256(self, path: str) -> str | None: ...


class _GitFiles:
    def __init__(self, storage: HubStorage, git: GitRepo, repo_key: str, commit: str) -> None:
        self.storage, self.git, self.commit, self.repo_key = storage, git, commit, repo_key
        self._infos = {f.path: f for f in list_files(git, commit, recursive=True) if f.type == "file"}

    @property
    def key(self) -> str | None:
        return f"{self.repo_key}@{self.commit}"

    def paths(self) -> dict[str, int]:
        return {p: f.size for p, f in self._infos.items()}

    def text(self, path: str) -> str | None:
        info = self._infos.get(path)
        if info is None or info.lfs is not None or info.size > MAX_TEXT:
            return None
        return self.git.read_blob(info.oid).decode("utf-8", "replace")

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        info: FileInfo = self._infos[path]
        if info.lfs is not None:
            return self.storage.blobs.open(info.lfs.sha256)
        return nullcontext(io.BytesIO(self.git.read_blob(info.oid)))

    def sha256(self, path: str) -> str | None:
        info = self._infos.get(path)
        return info.lfs.sha256 if info is not None and info.lfs is not None else None


class _FolderFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def key(self) -> str | None:
        return None  # a folder can change: never cached

    def paths(self) -> dict[str, int]:
        return {p.relative_to(self.folder).as_posix(): p.stat().st_size
                for p in sorted(self.folder.rglob("*")) if p.is_file()}

    def text(self, path: str) -> str | None:
        file = self.folder / path
        if not file.is_file() or file.stat().st_size > MAX_TEXT:
            return None
        return file.read_text("utf-8", "replace")

    def open(self, path: str) -> AbstractContextManager[BinaryIO]:
        return (self.folder / path).open("rb")

    def sha256(self, path: str) -> str | None:
        return None


def _json(files: _Files, path: str) -> dict[str, Any] | None:
    text = files.text(path)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ----------------------------------------------------------------------------- weights evidence


@dataclass(frozen=True)
class _Tensor:
    path: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute offsets in the file
    end: int


_CACHE: OrderedDict[str, Any] = OrderedDict()  # content at a commit never changes: safe to keep
_CACHE_LOCK = threading.Lock()  # page handlers run on a thread pool
CACHE_SIZE = 256


def _cached(key: str | None, build: Callable[[], Any]) -> Any:
    """`build()`, remembered under `key` (a commit-pinned identity) when there is one."""
    if key is None:
        return build()
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build()  # outside the lock: two threads may build the same value, never a wrong one
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def _weights(files: _Files) -> dict[str, _Tensor]:
    """Tensors of the top-level safetensors files (shards included), by name."""
    def build() -> dict[str, _Tensor]:
        out: dict[str, _Tensor] = {}
        for path, size in sorted(files.paths().items()):
            if "/" in path or not path.endswith(".safetensors"):
                continue
            try:
                with files.open(path) as fh:
                    header = read_safetensors_header(fh, size)
            except (SafetensorsError, OSError, CommonsError):
                continue
            for t in header.tensors:
                base = header.data_offset
                out[t.name] = _Tensor(path, t.dtype, t.shape, base + t.begin, base + t.end)
        return out
    return dict(_cached(None if files.key is None else f"w:{files.key}", build))


def _gguf_metadata(files: _Files) -> dict[str, Any] | None:
    """The `general.*` key-values of the first GGUF file (arrays reduced to their first items)."""
    def build() -> dict[str, Any] | None:
        for path, size in sorted(files.paths().items()):
            if not path.endswith(".gguf"):
                continue
            try:
                with files.open(path) as fh:
                    header = read_gguf_header(fh, size)
            except (GgufError, OSError, CommonsError):
                continue
            return {k: (list(v.head) if isinstance(v, GgufArray) else v)
                    for k, v in header.metadata.items() if k.startswith("general.")}
        return None
    found: dict[str, Any] | None = _cached(None if files.key is None else f"g:{files.key}", build)
    return found


def _digest(files: _Files, t: _Tensor) -> str:
    h = hashlib.sha256()
    with files.open(t.path) as fh:
        fh.seek(t.begin)
        left = t.end - t.begin
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def compare_tensors(child: _Files, parent: _Files, parent_ref: PolicyRef) -> TensorComparison | None:
    """Names and shapes, then bytes, of this revision's tensors against a claimed parent's.

    None when there is nothing to compare (no safetensors, or too few tensor names in common, as
    for an adapter, whose tensors are named after the layers they adapt).
    """
    key = f"c:{child.key}>{parent.key}" if child.key is not None and parent.key is not None else None
    found: TensorComparison | None = _cached(key, lambda: _compare(child, parent, parent_ref))
    return found


def _compare(child: _Files, parent: _Files, parent_ref: PolicyRef) -> TensorComparison | None:
    mine, theirs = _weights(child), _weights(parent)
    common = sorted(set(mine) & set(theirs))
    if not theirs or len(common) < max(1, len(theirs) // 2):
        return None
    same = [n for n in common if mine[n].shape == theirs[n].shape]
    ratio = len(same) / len(common)
    shapes_match = True if ratio >= 0.9 else False if ratio < 0.5 else None
    identical, budget = 0, HASH_BUDGET
    for name in same:
        a, b = mine[name], theirs[name]
        if a.dtype != b.dtype or a.end - a.begin != b.end - b.begin:
            continue
        file_a, file_b = child.sha256(a.path), parent.sha256(b.path)
        if file_a is not None and file_a == file_b and a.begin == b.begin:
            identical += 1  # the same file: every tensor in it is the same
            continue
        cost = 2 * (a.end - a.begin)
        if cost > budget:
            continue
        budget -= cost
        if _digest(child, a) == _digest(parent, b):
            identical += 1
    return TensorComparison(parent_ref, shapes_match, identical, len(theirs))


# ----------------------------------------------------------------------------- facts of one revision


ParentFiles = Callable[[PolicyRef], "_Files | None"]


def _facts(ref: PolicyRef, files: _Files, readme: str | None, parent_files: ParentFiles | None) -> RepoFacts:
    card = None
    if readme is not None:
        try:
            card, _ = split_front_matter(readme)
        except CardError:
            card = None
    license_file = None
    for name in LICENSE_FILES:
        text = files.text(name)
        if text:
            license_file = identify_license_text(text)
            break
    provenance = _json(files, "provenance.json")
    comparisons: list[TensorComparison] = []
    if parent_files is not None:
        claimed = {e.parent for e in (*card_edges(ref, card), *provenance_edges(ref, provenance))
                   if e.kind is EdgeKind.BASE_MODEL}
        for parent in sorted(claimed):
            theirs = parent_files(parent)
            found = compare_tensors(files, theirs, parent) if theirs is not None else None
            if found is not None:
                comparisons.append(found)
    evidence = evidence_from_files(
        adapter_config=_json(files, "adapter_config.json") or _json(files, "adapter/adapter_config.json"),
        config=_json(files, "config.json"), gguf_metadata=_gguf_metadata(files), comparisons=comparisons)
    return RepoFacts(ref, card=card, provenance=provenance, evidence=evidence, license_file=license_file,
                     files=tuple(files.paths()), notice_text=files.text("NOTICE"), readme_text=readme)


def revision_files(repos: Repos, repo: Repo, revision: str) -> _GitFiles:
    """The files of `repo` at `revision` (small texts read from git, weights through the blob store)."""
    git = repos.git(repo)
    return _GitFiles(repos.storage, git, repo.id, git.resolve(revision))


def _parent_files(repos: Repos, actor: Actor | None) -> ParentFiles:
    def load(ref: PolicyRef) -> _Files | None:
        try:
            repo = repos.get(actor, RepoRef.parse(RepoType.MODEL, ref.repo_id), Need.SEE)
            return revision_files(repos, repo, ref.revision or "main")
        except CommonsError:
            return None
    return load


def facts_at(repos: Repos, repo: Repo, revision: str, card_override: str | None = None,
             actor: Actor | None = None, compare: bool = False) -> RepoFacts:
    """Facts of one hosted repo at one revision (`card_override`: a README about to be committed).

    With `compare`, tensors are compared with those of the claimed base models `actor` may see
    (anonymous: the public ones).
    """
    files = revision_files(repos, repo, revision)
    kind = RepoKind.DATASET if repo.type == "dataset" else RepoKind.MODEL
    ref = PolicyRef(kind, repo.repo_id, files.commit)
    readme = card_override if card_override is not None else files.text("README.md")
    return _facts(ref, files, readme, _parent_files(repos, actor) if compare else None)


def facts_in_folder(repos: Repos, actor: Actor | None, ref: PolicyRef, folder: Path) -> RepoFacts:
    """Facts of a repo that is not created yet: a job's output folder, about to be published as `ref`."""
    files = _FolderFiles(folder)
    return _facts(ref, files, files.text("README.md"), _parent_files(repos, actor))


def gather(repos: Repos, actor: Actor | None, root: Repo, revision: str = "main",
           card_override: str | None = None) -> tuple[Lineage, PolicyRef]:
    """The lineage of `root`: itself plus every ancestor reachable in this hub (others kept by id).

    Ancestors the caller may not see are treated as outside the hub: their facts never leak.
    """
    first = facts_at(repos, root, revision, card_override, actor, compare=True)
    return gather_from(repos, actor, first), first.ref


def gather_from(repos: Repos, actor: Actor | None, first: RepoFacts) -> Lineage:
    """The lineage of a repo whose own facts are given, with every ancestor reachable in this hub."""
    facts = [first]
    seen = {first.ref.unpinned()}
    queue: deque[PolicyRef] = deque(referenced_repos(first))
    while queue and len(facts) < MAX_REPOS:
        ref = queue.popleft()
        if ref.unpinned() in seen:
            continue
        seen.add(ref.unpinned())
        found = _load(repos, actor, ref)
        if found is None:
            facts.append(RepoFacts(ref, hosted=False))
            continue
        facts.append(found)
        queue.extend(referenced_repos(found))
    return build_lineage(facts)


def _load(repos: Repos, actor: Actor | None, ref: PolicyRef) -> RepoFacts | None:
    kind = RepoType.DATASET if ref.kind is RepoKind.DATASET else RepoType.MODEL
    try:
        hub_ref = RepoRef.parse(kind, ref.repo_id)
        repo = repos.get(actor, hub_ref, Need.SEE)
        return facts_at(repos, repo, ref.revision or "main", actor=actor, compare=True)
    except CommonsError:
        return None


@dataclass(frozen=True)
class LicensePolicy:
    """An organisation's (or user's) choices: strict or lenient, and whether conflicts block commits."""

    mode: Mode
    block_commits: bool


def policy_for(session: Session, namespace: str) -> LicensePolicy:
    mode = str(get_setting_for(session, namespace, "license_mode"))
    return LicensePolicy(Mode(mode), get_setting_for(session, namespace, "license_on_conflict") == "block")


def decide(session: Session, storage: HubStorage, actor: Actor | None, repo: Repo, revision: str = "main",
           mode: Mode | None = None, card_override: str | None = None) -> Decision:
    repos = Repos(session, storage)
    lineage, ref = gather(repos, actor, repo, revision, card_override)
    return evaluate(lineage, ref, mode=mode or policy_for(session, repo.namespace).mode)
