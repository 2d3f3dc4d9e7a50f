"""The file browser: folders (`/tree/{rev}/{path}`) and files (`/blob/{rev}/{path}`) at any branch, tag or commit."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from commons.errors import EntryNotFound
from commons.hub import scans
from commons.hub.gitrepo import GitRepo
from commons.hub.ids import validate_path
from commons.hub.repos import Need
from commons.hub.trees import file_info, list_files, with_last_commits
from commons.web.highlight import IMAGES, MAX_TEXT, is_binary, render_text
from commons.web.pages.inspect import file_panels, scan_view
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render
from commons.web.urls import blob_url, tree_url, unsplit_revision


def ref_menu(git: GitRepo) -> dict[str, list[str]]:
    """Branches and tags for the revision picker."""
    refs = git.refs()
    return {"branches": [name for name, _, _ in refs["branches"]], "tags": [name for name, _, _ in refs["tags"]]}


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path so far) for each folder of `path`."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def _common(view: RepoView, git: GitRepo, rev: str, commit: str, path: str) -> dict[str, Any]:
    return {"view": view, "repo": view.repo, "tab": "files", "rev": rev, "commit": commit, "path": path,
            "crumbs": crumbs(path), "refs": ref_menu(git), "is_sha": commit.startswith(rev) and len(rev) >= 7}


@repo_route("/tree/{rev}")
@repo_route("/tree/{rev}/{path:path}")
def tree(request: Request, view: RepoViewDep, rev: str, path: str = "") -> Response:
    rev, path = unsplit_revision(rev, path)
    path = path.strip("/")
    if path:
        validate_path(path)
    git = view.git()
    commit = git.resolve(rev)
    entry = git.entry(commit, path)
    if entry is None:
        raise EntryNotFound(path or "/")
    if entry.type == "file":
        return RedirectResponse(blob_url(view.base, rev, path), status_code=303)
    entries = with_last_commits(git, commit, list_files(git, commit, path))
    entries.sort(key=lambda f: (f.type != "directory", f.path.lower()))
    found = scans.repo_findings(view.repos.session, view.repo, {f.path: f.etag for f in entries if f.type == "file"})
    badges = {p: v for p, r in found.items() if (v := scan_view(r)) is not None}
    return render(request, "pages/tree.html", entries=entries, last_commit=git.commit_info(commit), scan_badges=badges,
                  parent=tree_url(view.base, rev, path.rsplit("/", 1)[0]) if "/" in path else
                  tree_url(view.base, rev) if path else None, **_common(view, git, rev, commit, path))


@repo_route("/blob/{rev}/{path:path}")
def blob(request: Request, view: RepoViewDep, rev: str, path: str) -> Response:
    rev, path = unsplit_revision(rev, path)
    validate_path(path)
    view.require(Need.FILES)  # file contents: the API's rule for downloads (gated repos need a grant)
    git = view.git()
    commit = git.resolve(rev)
    info = file_info(git, commit, path)
    if info is None:
        raise EntryNotFound(path)
    if info.type == "directory":
        return RedirectResponse(tree_url(view.base, rev, path), status_code=303)
    last = git.last_commit_for(commit, [path]).get(path)
    shown: dict[str, Any] = {"rendered": None, "mode": "download"}
    if info.lfs is not None:
        shown["mode"] = "lfs"
    elif path.lower().endswith(IMAGES):
        shown["mode"] = "image"
    elif info.size <= MAX_TEXT:
        data = git.read_blob(info.oid)
        if not is_binary(data):
            shown = {"rendered": render_text(path, data.decode("utf-8")), "mode": "text"}
        else:
            shown["mode"] = "binary"
    # The inspector slot: the scan verdict, then the weights inspector or the dataset viewer.
    inspector = file_panels(request, view, git, rev, commit, info)
    return render(request, "pages/blob.html", info=info, file_commit=last, inspector=inspector,
                  name=path.rsplit("/", 1)[-1], **shown, **_common(view, git, rev, commit, path))
