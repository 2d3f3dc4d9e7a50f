"""The registry of running model servers: entries of live processes are listed, those of dead ones dropped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from commons.serving.registry import ServerEntry, register, running, servers_dir, unregister


def entry(pid: int, repo: str = "alice/m", started: float = 1.0) -> ServerEntry:
    return ServerEntry(repo_id=repo, commit="a" * 40, model=repo, url="http://127.0.0.1:8100", engine="onnx",
                       pid=pid, started_at=started)


def test_live_servers_are_listed_newest_first(tmp_path: Path) -> None:
    parent = os.getppid()
    register(tmp_path, entry(os.getpid(), started=1.0))
    register(tmp_path, entry(parent, started=2.0))
    assert [e.pid for e in running(tmp_path, "alice/m")] == [parent, os.getpid()]
    assert running(tmp_path, "bob/other") == []


def test_dead_servers_are_dropped(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = register(tmp_path, entry(gone.pid))
    assert running(tmp_path) == []
    assert not path.exists()


def test_unregister_and_garbage(tmp_path: Path) -> None:
    path = register(tmp_path, entry(os.getpid()))
    (servers_dir(tmp_path) / "junk.json").write_text("{not json")
    assert len(running(tmp_path)) == 1
    unregister(path)
    assert running(tmp_path) == []
