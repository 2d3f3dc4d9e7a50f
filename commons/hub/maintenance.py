"""Start-up housekeeping: leftovers of interrupted uploads, stale listing indexes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.db.models import Repo
from commons.hub.repos import Repos
from commons.hub.storage import HubStorage


def sweep_temp(tmp_dir: Path, staging_dir: Path | None, older_than_s: float = 0) -> int:
    """Delete temp files of commits and uploads that a crash interrupted. Returns how many."""
    now = time.time()
    removed = 0
    for root in (tmp_dir, staging_dir):
        if root is None or not root.is_dir():
            continue
        for item in root.iterdir():
            if now - item.stat().st_mtime < older_than_s:
                continue
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed += 1
    return removed


def reindex_all(session: Session, storage: HubStorage) -> int:
    """Bring every repo's listing columns up to the head of main (after a crash between ref and index)."""
    repos = Repos(session, storage)
    count = 0
    for repo in session.scalars(select(Repo)):
        before = repo.head_sha
        repos.reindex(repo)
        count += before != repo.head_sha
    return count
