"""The hub's "Serve" action: start and stop `commons serve-model` processes for a repo.

The hub never loads a model: it starts `python -m commons serve-model REPO@COMMIT` as a process of its
own session (same environment, so the same COMMONS_HOME and database), which registers itself in
`commons.serving.registry` once it listens. Until then a marker under `serving/starting/` says a
start is under way, so a second click does not start a second server. The server's output goes to
`serving/logs/`, where the Playground shows its last lines if it exits before it listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from commons.serving.registry import alive, running

# A model server that has not listened after this long is no longer "starting" (it failed or hung).
START_TIMEOUT_S = 900


@dataclass(frozen=True)
class Starting:
    pid: int
    started_at: float
    log: Path


def _slug(repo_id: str) -> str:
    return repo_id.replace("/", "--")


def _marker(home: Path, repo_id: str) -> Path:
    return home / "serving" / "starting" / f"{_slug(repo_id)}.json"


def starting(home: Path, repo_id: str) -> Starting | None:
    """The start under way for `repo_id`: its process lives, has not registered yet, and is not too old."""
    path = _marker(home, repo_id)
    try:
        data = json.loads(path.read_text())
        entry = Starting(int(data["pid"]), float(data["started_at"]), Path(data["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if running(home, repo_id) or not alive(entry.pid) or time.time() - entry.started_at > START_TIMEOUT_S:
        return None
    return entry


def last_log(home: Path, repo_id: str, lines: int = 12) -> str | None:
    """The last lines of the latest server started for `repo_id` (shown when it did not come up)."""
    logs = sorted((home / "serving" / "logs").glob(f"{_slug(repo_id)}-*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return None
    return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(home: Path, repo_id: str, commit: str) -> Starting | None:
    """Start a server for `repo_id` at `commit` unless one runs (None) or is starting (that start)."""
    if running(home, repo_id):
        return None
    under_way = starting(home, repo_id)
    if under_way is not None:
        return under_way
    logs = home / "serving" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{_slug(repo_id)}-{int(time.time())}.log"
    env = {**os.environ, "COMMONS_HOME": str(home)}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "commons", "serve-model", f"{repo_id}@{commit}",
                                 "--host", "127.0.0.1", "--port", str(_free_port())],
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    # Reap it when it exits, so that a finished server is not left a zombie that looks alive.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    entry = Starting(proc.pid, time.time(), log)
    marker = _marker(home, repo_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": entry.pid, "started_at": entry.started_at, "log": str(log)}))
    tmp.replace(marker)
    return entry


def stop(home: Path, repo_id: str) -> int:
    """Stop every server of `repo_id` (running or starting) with SIGTERM; returns how many."""
    pids = {entry.pid for entry in running(home, repo_id)}
    under_way = starting(home, repo_id)
    if under_way is not None:
        pids.add(under_way.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # serve-model unregisters itself as it exits
    _marker(home, repo_id).unlink(missing_ok=True)
    return len(pids)
