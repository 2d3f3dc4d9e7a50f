"""History: the commits of a revision, one commit with its diff, and the repo's branches and tags."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from commons.errors import RevisionNotFound
from commons.hub.discussions import pr_ref
from commons.hub.ids import PR_REF
from commons.hub.repos import Need
from commons.web.diffs import commit_patch, parse_diff
from commons.web.pages.files import ref_menu
from commons.web.reporoutes import RepoViewDep, repo_route
from commons.web.templating import render
from commons.web.urls import unsplit_revision

PAGE = 30


@repo_route("/commits/{rev}")
@repo_route("/commits/{rev}/{rest:path}")
def commits(request: Request, view: RepoViewDep, rev: str, rest: str = "", p: int = 0) -> Response:
    rev, _ = unsplit_revision(rev, rest)
    git = view.git()
    head = git.resolve(rev)
    page = max(0, p)
    items = git.log(head, skip=page * PAGE, limit=PAGE + 1)
    return render(request, "pages/commits.html", view=view, repo=view.repo, tab="commits", rev=rev, commit=head,
                  commits=items[:PAGE], more=len(items) > PAGE, page=page, refs=ref_menu(git))


@repo_route("/commit/{sha}")
def commit(request: Request, view: RepoViewDep, sha: str) -> Response:
    view.require(Need.FILES)  # a diff shows file contents
    git = view.git()
    if len(sha) < 7 or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise RevisionNotFound(sha)
    full = git.resolve(sha.lower())
    info = git.commit_info(full)
    parent = info.parents[0] if info.parents else None
    diff = parse_diff(commit_patch(git, full, parent))
    return render(request, "pages/commit.html", view=view, repo=view.repo, tab="commits", rev=full,
                  info=info, diff=diff, parent=parent)


@repo_route("/refs")
def refs(request: Request, view: RepoViewDep) -> Response:
    git = view.git()
    listed = git.refs()
    branches = [(name, git.commit_info(target)) for name, _, target in listed["branches"]]
    tags = [(name, git.commit_info(target)) for name, _, target in listed["tags"]]
    pulls = []
    for name, _, target in listed["pulls"]:
        match = PR_REF.match(name)
        if match and name == pr_ref(int(match.group(1))):
            pulls.append((int(match.group(1)), git.commit_info(target)))
    pulls.sort(reverse=True)
    return render(request, "pages/refs.html", view=view, repo=view.repo, tab="files", rev="main",
                  branches=branches, tags=tags, pulls=pulls)
