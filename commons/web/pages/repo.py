"""The repo page: the rendered card with its metadata panel, and how to use the repo."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from commons.errors import RevisionNotFound
from commons.hub.cards import CardError, split_front_matter
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.trees import FileInfo, file_info, list_files
from commons.services import Services
from commons.web.cardmeta import card_facts
from commons.web.deps import ServicesDep
from commons.web.markdown import LinkBase, render_markdown
from commons.web.pages.gate import grant_status
from commons.web.panels import panels_for
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render

MAX_CARD = 1_000_000
WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx", ".ckpt", ".h5", ".msgpack")


def read_card(git: GitRepo, commit: str) -> tuple[str | None, FileInfo | None]:
    """README.md's text at `commit` (None when absent, stored in LFS, or too big to show)."""
    info = file_info(git, commit, "README.md")
    if info is None or info.type != "file" or info.lfs is not None or info.size > MAX_CARD:
        return None, info
    return git.read_blob(info.oid).decode("utf-8", "replace"), info


def site_url(request: Request, services: Services) -> str:
    """The hub's base URL as clients should use it (for the snippets)."""
    public = services.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def card_context(view: RepoView, git: GitRepo, commit: str | None) -> dict[str, Any]:
    meta: dict[str, Any] | None = view.repo.card_data  # what the API shows anyone who can see the repo
    body = None
    card_error = None
    has_card = False
    if commit is not None and view.can_read:
        text, _ = read_card(git, commit)
        has_card = text is not None
        if text is not None:
            try:
                meta, rest = split_front_matter(text)
            except CardError as exc:
                card_error, rest = str(exc), text
            body = render_markdown(rest, LinkBase(view.base, MAIN))
    return {"meta": meta, "facts": card_facts(meta), "card_html": body, "card_error": card_error,
            "has_card": has_card}


@repo_route("")
def repo_page(request: Request, view: RepoViewDep, services: ServicesDep) -> Response:
    git = view.git()
    view.repos.reindex(view.repo, git)  # as the API's repo info: keep the listing columns current
    try:
        commit: str | None = git.resolve(MAIN)
    except RevisionNotFound:
        commit = None
    files = [f for f in list_files(git, commit, recursive=True) if f.type == "file"] if commit else []
    last = git.commit_info(commit) if commit else None
    grant = grant_status(view.repos.session, view.repo, view.viewer.actor) if view.repo.gated != "none" else None
    return render(
        request, "pages/repo.html", view=view, repo=view.repo, tab="card", rev=MAIN, last_commit=last,
        file_count=len(files), total_size=sum(f.size for f in files),
        weights_size=sum(f.size for f in files if f.path.endswith(WEIGHTS)), grant=grant,
        site=site_url(request, services), panels=panels_for(view, git, commit),
        **card_context(view, git, commit),
    )
