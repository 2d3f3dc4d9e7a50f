"""A model's parent in the lineage, for the report card's deltas ("what did the fine-tune cost?").

The parent is the base model the lineage rules find for the model's current card and
`provenance.json` (`commons.policy.lineage`: a job's record wins over the card's `base_model`;
contradicted claims are ignored). Only the declared and recorded edges are read: no weight files,
so a page view stays cheap. A model with several bases (a merge) has no single parent: None.
"""

from __future__ import annotations

import json
from typing import Any

from commons.accounts.actors import Actor
from commons.db.models import Repo
from commons.errors import CommonsError
from commons.hub.gitrepo import MAIN
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.hub.trees import file_info
from commons.policy.facts import EdgeKind, EdgeStatus, RepoKind
from commons.policy.facts import RepoRef as PolicyRef
from commons.policy.lineage import card_edges, provenance_edges, reconcile

MAX_PROVENANCE = 1_000_000


def _provenance(repos: Repos, repo: Repo) -> dict[str, Any] | None:
    git = repos.git(repo)
    head = git.ref_target(f"refs/heads/{MAIN}")
    info = file_info(git, head, "provenance.json") if head else None
    if info is None or info.type != "file" or info.lfs is not None or info.size > MAX_PROVENANCE:
        return None
    try:
        value = json.loads(git.read_blob(info.oid))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parent_ref(repos: Repos, repo: Repo) -> PolicyRef | None:
    """The single base model the lineage rules give `repo` at the head of main, if there is one."""
    ref = PolicyRef(RepoKind.MODEL, repo.repo_id, repo.head_sha or "")
    edges = reconcile(card_edges(ref, repo.card_data), provenance_edges(ref, _provenance(repos, repo)), ())
    bases = {e.parent.repo_id: e.parent for e in edges
             if e.kind is EdgeKind.BASE_MODEL and e.status is not EdgeStatus.CONTRADICTED}
    return next(iter(bases.values())) if len(bases) == 1 else None


def parent_repo(repos: Repos, actor: Actor | None, repo: Repo) -> tuple[str | None, Repo | None]:
    """(the parent's id, its repo here if the viewer may see it)."""
    ref = parent_ref(repos, repo)
    if ref is None:
        return None, None
    try:
        return ref.repo_id, repos.get(actor, RepoRef.parse(RepoType.MODEL, ref.repo_id), Need.SEE)
    except CommonsError:
        return ref.repo_id, None
