"""The dataset viewer: a page of rows of a CSV, TSV, JSONL or Parquet file (on its file page), and
the "Viewer" tab of dataset repos, which picks among the repo's data files by split."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from commons.errors import EntryNotFound, InvalidRequest
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import validate_path
from commons.hub.reading import open_file
from commons.hub.repos import Need
from commons.hub.tabular import PAGE_ROWS, TableError, TablePage, read_page, table_format
from commons.hub.trees import FileInfo, file_info, list_files
from commons.web.panels import Tab, register_tab
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render, render_html

register_tab(Tab("viewer", "Viewer", "search", "viewer", kinds=("dataset",), order=20))

MAX_DATA_FILES = 500
SPLITS = ("train", "validation", "test")
_SPLIT_WORDS = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                "val": "validation", "dev": "validation", "test": "test", "testing": "test", "eval": "test"}


def table_fragment(request: Request, view: RepoView, git: GitRepo, rev: str, info: FileInfo, offset: int,
                   page_url: str | None = None) -> Markup:
    """The rows of `info` from `offset`, with the schema and paging links (to `page_url`)."""
    page: TablePage | None = None
    error = None
    try:
        with open_file(view.repos.storage, git, info) as fh:
            page = read_page(info.path, fh, info.size, offset)
    except TableError as exc:
        error = str(exc)
    return Markup(render_html("partials/dataset_viewer.html", request, page=page, error=error, info=info,
                              page_rows=PAGE_ROWS, page_url=page_url or request.url.path,
                              extra={} if page_url is None else {"file": info.path, "rev": rev}))


@dataclass(frozen=True)
class DataFile:
    path: str
    split: str
    size: int


def split_of(path: str) -> str:
    """The split a data file belongs to, by the Hub's naming conventions (train unless named)."""
    words = re.split(r"[^a-z]+", path.lower())
    for word in reversed(words):
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return "train"


def card_splits(card_data: Any) -> list[tuple[str, str]]:
    """(split label, path pattern) from the card's `configs: [{config_name, data_files}]`, as the Hub
    and `datasets` read it; the label is `config/split` unless the config is `default`."""
    configs = card_data.get("configs") if isinstance(card_data, dict) else None
    out: list[tuple[str, str]] = []
    for config in configs if isinstance(configs, list) else []:
        if not isinstance(config, dict):
            continue
        name = str(config.get("config_name") or "default")
        files = config.get("data_files")
        entries = files if isinstance(files, list) else [{"split": "train", "path": files}]
        for entry in entries:
            split, paths = ("train", entry) if not isinstance(entry, dict) else (
                str(entry.get("split") or "train"), entry.get("path"))
            for pattern in paths if isinstance(paths, list) else [paths]:
                if isinstance(pattern, str) and pattern:
                    out.append((split if name == "default" else f"{name}/{split}", pattern))
    return out


def data_files(git: GitRepo, commit: str, card_data: Any = None) -> list[DataFile]:
    """The repo's tabular files, train first, then validation, test, other splits; by path within.

    Splits come from the card's `configs` when it has them, else from the file names."""
    patterns = card_splits(card_data)
    found = []
    for f in list_files(git, commit, "", recursive=True):
        if f.type == "file" and table_format(f.path) is not None:
            split = next((label for label, pattern in patterns if fnmatch.fnmatchcase(f.path, pattern)), None)
            found.append(DataFile(f.path, split or split_of(f.path), f.size))
            if len(found) >= MAX_DATA_FILES:
                break
    order = {s: i for i, s in enumerate(SPLITS)}
    return sorted(found, key=lambda d: (order.get(d.split.rsplit("/", 1)[-1], len(order)), d.split, d.path))


@repo_route("/viewer")
def viewer(request: Request, view: RepoViewDep, file: str = "", rev: str = MAIN, offset: int = 0) -> Response:
    view.require(Need.FILES)
    git = view.git()
    commit = git.resolve(rev)
    files = data_files(git, commit, view.repo.card_data if rev == MAIN else None)
    if file:
        validate_path(file)
        if table_format(file) is None:
            raise InvalidRequest(f"{file} is not a CSV, TSV, JSONL or Parquet file")
    chosen = file or (files[0].path if files else "")
    table = None
    if chosen:
        info = file_info(git, commit, chosen)
        if info is None or info.type != "file":
            raise EntryNotFound(chosen)
        table = table_fragment(request, view, git, rev, info, max(0, offset), page_url=request.url.path)
    splits: dict[str, list[DataFile]] = {}
    for d in files:
        splits.setdefault(d.split, []).append(d)
    return render(request, "pages/viewer.html", view=view, repo=view.repo, tab="viewer", rev=rev, commit=commit,
                  splits=splits, chosen=chosen, table=table, folder=posixpath.dirname)
