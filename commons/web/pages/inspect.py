"""What the file page shows above a file's content: its scan verdict, and an inspector for weights
(safetensors, GGUF, sharded index) or data (CSV, TSV, JSONL, Parquet: the dataset viewer).

Everything here reads headers and footers only (see `commons.hub.weights`, `commons.hub.tabular`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastapi import Request
from markupsafe import Markup

from commons.db.models import ScanRecord
from commons.hub import scans
from commons.hub.gitrepo import GitRepo
from commons.hub.reading import open_file
from commons.hub.tabular import table_format
from commons.hub.trees import FileInfo, file_info
from commons.hub.weights import (
    INDEX_SUFFIX,
    ShardOpener,
    WeightsError,
    WeightsSummary,
    inspect_index,
    inspect_weights,
)
from commons.web.pages.viewer import table_fragment
from commons.web.reporoutes import RepoView
from commons.web.templating import render_html

TENSOR_PAGE = 100


@dataclass(frozen=True)
class ScanView:
    """A stored scan verdict as the page shows it."""

    status: str  # safe | suspicious | unsafe
    scanner: str
    quarantined: bool
    findings: list[dict[str, Any]]
    imports: list[str]
    commit: str


def scan_view(record: ScanRecord | None) -> ScanView | None:
    found = scans.scan_json(record)
    if found is None:
        return None
    return ScanView(found["status"], found["scanner"], found["quarantined"], found["findings"], found["imports"],
                    found["commit"])


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name) or ""
    return int(raw) if raw.isdigit() and len(raw) < 12 else 0


def file_panels(request: Request, view: RepoView, git: GitRepo, rev: str, commit: str, info: FileInfo) -> Markup | None:
    """The fragment for the file page's inspector slot, or None when there is nothing to add."""
    scan = scan_view(scans.verdict(view.repos.session, view.repo, info))
    parts: list[str] = []
    if scan is not None:
        parts.append(render_html("partials/scan_verdict.html", request, scan=scan, view=view))
    if info.path.lower().endswith((".safetensors", ".gguf", INDEX_SUFFIX)) or _is_gguf(view, git, info):
        parts.append(_weights(request, view, git, rev, commit, info))
    elif table_format(info.path) is not None:
        parts.append(table_fragment(request, view, git, rev, info, _int_param(request, "offset")))
    return Markup("".join(parts)) if parts else None


def _is_gguf(view: RepoView, git: GitRepo, info: FileInfo) -> bool:
    # A GGUF is recognised by its magic whatever its name (as the scanner does); only LFS objects
    # are large enough to be weights, so small git files are not opened for this.
    if info.lfs is None:
        return False
    with open_file(view.repos.storage, git, info) as fh:
        return fh.read(4) == b"GGUF"


def _weights(request: Request, view: RepoView, git: GitRepo, rev: str, commit: str, info: FileInfo) -> str:
    summary: WeightsSummary | None = None
    error = None
    try:
        with open_file(view.repos.storage, git, info) as fh:
            if info.path.endswith(INDEX_SUFFIX):
                summary = inspect_index(info.path, fh, info.size, _shard_opener(view, git, commit))
            else:
                summary = inspect_weights(info.path, fh, info.size)
    except WeightsError as exc:
        error = str(exc)
    offset = _int_param(request, "offset")
    needle = (request.query_params.get("tensor") or "").strip()[:200]
    tensors = list(summary.tensors) if summary else []
    if needle:
        tensors = [t for t in tensors if needle.lower() in t.name.lower()]
    offset = min(offset, max(0, len(tensors) - 1))
    return render_html("partials/inspector_weights.html", request, view=view, info=info, rev=rev, summary=summary,
                       error=error, tensors=tensors[offset: offset + TENSOR_PAGE], offset=offset,
                       matching=len(tensors), page_size=TENSOR_PAGE, needle=needle,
                       page_url=request.url.path)


def _shard_opener(view: RepoView, git: GitRepo, commit: str) -> ShardOpener:
    """open_shard for `inspect_index`: a shard of the same revision, or None when it is missing."""

    def open_shard(path: str) -> AbstractContextManager[tuple[BinaryIO, int]] | None:
        info = file_info(git, commit, path)
        if info is None or info.type != "file":
            return None
        return _opened(view, git, info)

    return open_shard


@contextmanager
def _opened(view: RepoView, git: GitRepo, info: FileInfo) -> Iterator[tuple[BinaryIO, int]]:
    with open_file(view.repos.storage, git, info) as fh:
        yield fh, info.size
