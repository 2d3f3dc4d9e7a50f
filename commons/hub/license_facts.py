"""Gather what the policy engine needs about a repo and its ancestry from this hub.

The policy room is pure: it gets facts and returns decisions. This module is the one place that
reads cards, `provenance.json`, `adapter_config.json`, GGUF-free evidence (`config.json`) and
LICENSE files out of git, follows `referenced_repos` breadth-first through the hub, and keeps
ancestors that are not hosted here by id.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

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
from commons.hub.trees import file_info, list_files
from commons.policy import (
    Decision,
    Lineage,
    Mode,
    RepoFacts,
    RepoKind,
    build_lineage,
    evaluate,
    evidence_from_files,
    identify_license_text,
    referenced_repos,
)
from commons.policy import RepoRef as PolicyRef

MAX_REPOS = 200
MAX_TEXT = 1_000_000
LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license.txt")


def _text(git: GitRepo, commit: str, path: str) -> str | None:
    info = file_info(git, commit, path)
    if info is None or info.type != "file" or info.lfs is not None or info.size > MAX_TEXT:
        return None
    return git.read_blob(info.oid).decode("utf-8", "replace")


def _json(git: GitRepo, commit: str, path: str) -> dict[str, Any] | None:
    text = _text(git, commit, path)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def facts_at(repos: Repos, repo: Repo, revision: str, card_override: str | None = None) -> RepoFacts:
    """Facts of one hosted repo at one revision (`card_override`: a README about to be committed)."""
    git = repos.git(repo)
    commit = git.resolve(revision)
    kind = RepoKind.DATASET if repo.type == "dataset" else RepoKind.MODEL
    ref = PolicyRef(kind, repo.repo_id, commit)
    readme = card_override if card_override is not None else _text(git, commit, "README.md")
    card = None
    if readme is not None:
        try:
            card, _ = split_front_matter(readme)
        except CardError:
            card = None
    license_file = None
    for name in LICENSE_FILES:
        text = _text(git, commit, name)
        if text:
            license_file = identify_license_text(text)
            break
    evidence = evidence_from_files(adapter_config=_json(git, commit, "adapter_config.json"),
                                   config=_json(git, commit, "config.json"))
    files = tuple(f.path for f in list_files(git, commit, recursive=True) if f.type == "file")
    return RepoFacts(ref, card=card, provenance=_json(git, commit, "provenance.json"), evidence=evidence,
                     license_file=license_file, files=files, notice_text=_text(git, commit, "NOTICE"),
                     readme_text=readme)


def gather(repos: Repos, actor: Actor | None, root: Repo, revision: str = "main",
           card_override: str | None = None) -> tuple[Lineage, PolicyRef]:
    """The lineage of `root`: itself plus every ancestor reachable in this hub (others kept by id).

    Ancestors the caller may not see are treated as outside the hub: their facts never leak.
    """
    first = facts_at(repos, root, revision, card_override)
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
    return build_lineage(facts), first.ref


def _load(repos: Repos, actor: Actor | None, ref: PolicyRef) -> RepoFacts | None:
    kind = RepoType.DATASET if ref.kind is RepoKind.DATASET else RepoType.MODEL
    try:
        hub_ref = RepoRef.parse(kind, ref.repo_id)
        repo = repos.get(actor, hub_ref, Need.SEE)
        return facts_at(repos, repo, ref.revision or "main")
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
