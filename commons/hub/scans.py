"""Scan what a commit adds, store the findings per file and revision, and decide quarantine.

Scanning runs right after the commit's ref moves, inside the same request: the scanners read only
headers and pickle opcodes, so even a multi-GiB weights file costs milliseconds. Results are keyed
by the bytes (sha256 for LFS objects, git blob id otherwise), so a file carried unchanged into
later revisions keeps its verdict. A file with a critical finding is quarantined: only the repo's
writers can download it, and only when they ask for it explicitly.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons.db.models import Repo, ScanRecord
from commons.hub.gitrepo import GitRepo
from commons.hub.storage import HubStorage
from commons.hub.trees import FileInfo, file_info
from commons.scanning import scan_file

log = logging.getLogger(__name__)
QUARANTINE = "critical"


def scan_paths(session: Session, storage: HubStorage, repo: Repo, git: GitRepo, commit: str,
               paths: Iterable[str]) -> list[ScanRecord]:
    """Scan `paths` as they are at `commit`; store one record per scanned file."""
    records = []
    for path in paths:
        info = file_info(git, commit, path)
        if info is None or info.type != "file":
            continue
        known = _record_for(session, repo, info.etag)
        if known is not None:
            continue
        try:
            result = _scan(storage, git, info)
        except Exception:  # a scanner bug must never fail a commit that already happened
            log.exception("scanning %s at %s failed", path, commit)
            continue
        if result is None:
            continue
        record = ScanRecord(repo_id=repo.id, commit=commit, path=path, blob=info.etag, scanner=result.scanner,
                            severity=result.severity_label, findings=[f.to_json() for f in result.findings],
                            imports=list(result.imports))
        session.add(record)
        records.append(record)
    session.flush()
    return records


def _scan(storage: HubStorage, git: GitRepo, info: FileInfo) -> Any:
    if info.lfs is not None:
        with storage.blobs.open(info.lfs.sha256) as fh:
            return scan_file(info.path, fh, info.size)
    return scan_file(info.path, io.BytesIO(git.read_blob(info.oid)), info.size)


def _record_for(session: Session, repo: Repo, blob: str) -> ScanRecord | None:
    return session.scalar(select(ScanRecord).where(ScanRecord.repo_id == repo.id, ScanRecord.blob == blob)
                          .order_by(ScanRecord.id.desc()).limit(1))


def verdict(session: Session, repo: Repo, info: FileInfo) -> ScanRecord | None:
    """The stored scan of this file's bytes, if it was scanned."""
    return _record_for(session, repo, info.etag)


# Formats whose loading can run code (pickle) or whose parsers have a history of memory-safety
# exploits from crafted headers (GGUF). A malformed safetensors header is reported, not quarantined:
# the safetensors loader validates it and can only refuse, never execute.
QUARANTINE_SCANNERS = frozenset({"pickle", "gguf"})


def is_quarantined(record: ScanRecord | None) -> bool:
    return record is not None and record.severity == QUARANTINE and record.scanner in QUARANTINE_SCANNERS


def scan_json(record: ScanRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    status = {"ok": "safe", "info": "safe", "warning": "suspicious", "critical": "unsafe"}[record.severity]
    return {"status": status, "scanner": record.scanner, "quarantined": is_quarantined(record),
            "findings": record.findings, "imports": record.imports, "commit": record.commit}


def repo_findings(session: Session, repo: Repo, blobs: dict[str, str]) -> dict[str, ScanRecord]:
    """Scan records for the given {path: blob} of one revision."""
    if not blobs:
        return {}
    rows = session.scalars(select(ScanRecord).where(ScanRecord.repo_id == repo.id,
                                                    ScanRecord.blob.in_(set(blobs.values()))))
    by_blob = {r.blob: r for r in rows}
    return {path: by_blob[b] for path, b in blobs.items() if b in by_blob}
