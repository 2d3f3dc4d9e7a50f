"""A job's child process, seen from the worker: start it, read its two streams, stop it.

stdout carries the JSON-lines protocol of `commons.ml.events`; stderr carries everything else
(library warnings, tracebacks). Both are read by threads into one queue, so the worker's loop
never blocks on a pipe. The child runs in its own session (process group), so stopping it also
stops anything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

STDERR_TAIL = 40


@dataclass(frozen=True)
class ChildEvent:
    """One line from the child: a protocol event (stdout) or a stderr line as a log event."""

    at: datetime
    kind: str  # log | progress | metric | phase
    data: dict[str, Any]


class ChildProcess(Protocol):
    """What the worker needs from a running job, wherever it runs (a local process, a Ray task)."""

    def poll(self) -> int | None: ...

    def events(self, wait: float = 0.0) -> Iterator[ChildEvent]:
        """Events received since the last call; waits up to `wait` seconds for the first one."""
        ...

    def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; returns once the child is gone."""
        ...

    @property
    def stderr_tail(self) -> list[str]: ...


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a job process gets on top of its parent's environment: offline, no progress bars, and a
    fixed hash seed (set iteration order can reach the outputs)."""
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "TQDM_DISABLE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        # Lets cuBLAS run deterministically when torch's deterministic mode is on (GPU jobs).
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
    env.update(extra or {})
    return env


def parse_line(line: str) -> ChildEvent | None:
    """A protocol line as an event; anything that is not a JSON object with a `type` becomes a log line."""
    now = datetime.now(UTC)
    line = line.rstrip("\n")
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return ChildEvent(now, "log", {"level": "stdout", "message": line[:2000]})
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return ChildEvent(now, "log", {"level": "stdout", "message": line[:2000]})
    kind = data.pop("type")
    return ChildEvent(now, kind if kind in ("log", "progress", "metric", "phase") else "log", data)


class LocalChild:
    """`python -m commons.ml.run spec.json workdir` as a subprocess of this worker."""

    def __init__(self, spec_path: Path, workdir: Path, python: str = sys.executable,
                 env: dict[str, str] | None = None) -> None:
        self._queue: queue.Queue[ChildEvent] = queue.Queue()
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.proc = subprocess.Popen(
            [python, "-m", "commons.ml.run", str(spec_path), str(workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **job_env(env)}, cwd=workdir, start_new_session=True,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_protocol, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_protocol(self, stream: IO[str]) -> None:
        for line in stream:
            event = parse_line(line)
            if event is not None:
                self._queue.put(event)

    def _read_stderr(self, stream: IO[str]) -> None:
        for raw in stream:
            # Progress bars redraw with \r: keep the last state of each line only.
            line = raw.rstrip("\n").rsplit("\r", 1)[-1].rstrip()
            if line:
                self._tail.append(line)
                self._queue.put(ChildEvent(datetime.now(UTC), "log", {"level": "stderr", "message": line[:2000]}))

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            # Let the readers drain what the child wrote before it exited.
            for reader in self._readers:
                reader.join(timeout=5)
        return code

    def events(self, wait: float = 0.0) -> Iterator[ChildEvent]:
        # Blocking on the queue (not sleeping in a loop) keeps an idle worker from waking 20 times a second.
        try:
            yield self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def stop(self, grace_s: float) -> None:
        if self.proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL)
        self.proc.wait()
        self.poll()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._tail)
