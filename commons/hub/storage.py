"""Where a hub keeps its bytes: git directories, the blob store, temp space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from commons.hub.gitrepo import GitRepo
from commons.storage import BlobStore


@dataclass(frozen=True)
class HubStorage:
    repos_dir: Path
    tmp_dir: Path
    blobs: BlobStore
    lfs_threshold: int

    def git_path(self, repo_key: str) -> Path:
        return self.repos_dir / repo_key[:2] / f"{repo_key}.git"

    def git(self, repo_key: str) -> GitRepo:
        return GitRepo(self.git_path(repo_key))
