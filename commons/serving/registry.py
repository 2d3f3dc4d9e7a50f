"""Which model servers run: one JSON file each under `$COMMONS_HOME/serving/servers/`.

`commons serve-model` writes its file once it listens and removes it when it stops; the hub's
playground reads the directory to find a server for a repo, and drops files whose process is gone
(a server killed with SIGKILL cannot remove its own). Hub and model servers therefore share
COMMONS_HOME, i.e. run on one machine; that is the deployment this design is for.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerEntry:
    """A running `serve-model` process: what it serves and where."""

    repo_id: str
    commit: str
    model: str  # the id clients send as `model`
    url: str  # base URL, without /v1
    engine: str
    pid: int
    started_at: float


def servers_dir(home: Path) -> Path:
    return home / "serving" / "servers"


def register(home: Path, entry: ServerEntry) -> Path:
    folder = servers_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{entry.pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(entry)))
    tmp.replace(path)  # atomic: a reader sees the whole entry or none
    return path


def unregister(path: Path) -> None:
    path.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(home: Path, repo_id: str | None = None) -> list[ServerEntry]:
    """Servers whose process is alive, newest first (optionally only those serving `repo_id`)."""
    found = []
    for path in sorted(servers_dir(home).glob("*.json")):
        try:
            entry = ServerEntry(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not alive(entry.pid):
            path.unlink(missing_ok=True)
            continue
        if repo_id is None or entry.repo_id == repo_id:
            found.append(entry)
    return sorted(found, key=lambda e: -e.started_at)


def now() -> float:
    return time.time()
