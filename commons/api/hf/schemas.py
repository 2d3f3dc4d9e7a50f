"""The Hub's camelCase JSON shapes, built from hub values (the reverse of huggingface_hub's dataclasses)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from commons.db.models import Repo
from commons.hub.gitrepo import CommitInfo
from commons.hub.trees import FileInfo


def iso(dt: datetime) -> str:
    """Timestamps end in `Z` with milliseconds: the client rejects `+00:00`."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def gated_value(repo: Repo) -> str | bool:
    return False if repo.gated == "none" else repo.gated


def repo_summary(repo: Repo) -> dict[str, Any]:
    """What listings return for each repo."""
    repo_id = f"{repo.namespace}/{repo.name}"
    out: dict[str, Any] = {
        "_id": repo.id,
        "id": repo_id,
        "author": repo.namespace,
        "sha": repo.head_sha,
        "lastModified": iso(repo.last_modified),
        "createdAt": iso(repo.created_at),
        "private": repo.private,
        "gated": gated_value(repo),
        "disabled": repo.disabled,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": list(repo.tags or []),
    }
    if repo.type == "model":
        out["modelId"] = repo_id
        out["library_name"] = repo.library_name
        out["pipeline_tag"] = repo.pipeline_tag
    return out


def sibling(info: FileInfo, blobs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": info.path}
    if blobs:
        out["size"] = info.size
        out["blobId"] = info.oid
        if info.lfs:
            out["lfs"] = {"sha256": info.lfs.sha256, "size": info.lfs.size, "pointerSize": info.pointer_size}
    return out


def tree_entry(info: FileInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"type": info.type, "oid": info.oid, "size": info.size, "path": info.path}
    if info.lfs:
        out["lfs"] = {"oid": info.lfs.sha256, "size": info.lfs.size, "pointerSize": info.pointer_size}
    if info.last_commit is not None:
        out["lastCommit"] = {
            "id": info.last_commit.id,
            "title": info.last_commit.title,
            "date": iso(info.last_commit.date),
        }
    return out


def commit_entry(c: CommitInfo) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "message": c.message,
        "date": iso(c.date),
        "authors": [{"user": c.author}],
        "parents": list(c.parents),
    }
