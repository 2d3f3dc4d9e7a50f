"""Run a job's child process as a Ray task instead of a local subprocess (COMMONS_JOBS_BACKEND=ray).

The same `python -m commons.ml.run spec.json workdir` runs inside a Ray task on whichever node the
cluster picks; its stdout/stderr lines come back through a `ray.util.queue.Queue` (an actor), so
progress streams exactly as with the local backend. Stopping cancels the task with `force=True`,
which kills the Ray worker process; the job process sees its parent vanish and exits.

The job directory must be visible at the same path on every Ray node (the worker writes the inputs
there and publishes the outputs from there): a shared volume, as for git repositories at scale.
On a single machine (a local cluster, or `ray start --head` on loopback) that holds trivially.
Ray is imported only here, only when this backend is used.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commons.jobs.child import STDERR_TAIL, ChildEvent, job_env, parse_line

_init_lock = threading.Lock()


def _connect(address: str | None) -> Any:
    # Imported by name: ray is an optional dependency (and has no type information to check against).
    ray = importlib.import_module("ray")
    with _init_lock:
        if not ray.is_initialized():
            # The driver needs nothing shipped: the cluster runs the same Commons installation.
            ray.init(address=address or "auto", ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False, logging_level="warning")
    return ray


def _run_in_task(spec_path: str, workdir: str, overrides: dict[str, str], lines: Any) -> int:
    """Body of the Ray task: the job process, its two streams forwarded line by line."""
    import os
    import subprocess
    import sys
    import threading as th

    env = {**os.environ, **overrides}  # the node's own environment, plus the job's settings
    proc = subprocess.Popen([sys.executable, "-m", "commons.ml.run", spec_path, workdir], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace", bufsize=1)

    def pump(stream: Any, tag: str) -> None:
        for line in stream:
            lines.put((tag, line))

    readers = [th.Thread(target=pump, args=(proc.stdout, "out")), th.Thread(target=pump, args=(proc.stderr, "err"))]
    for reader in readers:
        reader.start()
    code = proc.wait()
    for reader in readers:
        reader.join()
    return code


class RayChild:
    """A running job as a Ray task; the same interface as `LocalChild`."""

    def __init__(self, spec_path: Path, workdir: Path, address: str | None, env: dict[str, str] | None = None,
                 num_cpus: float = 1, num_gpus: float = 0) -> None:
        ray = _connect(address)
        self._ray = ray
        self._lines = importlib.import_module("ray.util.queue").Queue()
        task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(_run_in_task)
        self._ref = task.remote(str(spec_path), str(workdir), job_env(env), self._lines)
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self._code: int | None = None

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        ready, _ = self._ray.wait([self._ref], timeout=0)
        if not ready:
            return None
        try:
            self._code = int(self._ray.get(self._ref))
        except Exception as exc:  # the task died (node lost, cancelled): report it like a crash
            self._tail.append(f"ray task failed: {type(exc).__name__}: {exc}")
            self._code = -9
        return self._code

    def events(self, wait: float = 0.0) -> Iterator[ChildEvent]:
        if wait > 0 and self._lines.empty():
            time.sleep(wait)
        while not self._lines.empty():
            try:
                batch = self._lines.get_nowait_batch(min(self._lines.qsize(), 1000))
            except Exception:
                return
            for tag, line in batch:
                if tag == "out":
                    event = parse_line(line)
                    if event is not None:
                        yield event
                    continue
                text = line.rstrip("\n").rsplit("\r", 1)[-1].rstrip()
                if text:
                    self._tail.append(text)
                    yield ChildEvent(datetime.now(UTC), "log", {"level": "stderr", "message": text[:2000]})

    def stop(self, grace_s: float) -> None:
        if self.poll() is not None:
            return
        # A forced cancel kills the Ray worker process running the task; the job process, whose parent
        # that was, notices within half a second and exits (see commons.ml.run). A polite cancel would
        # only interrupt the task's wait and leave the job process running.
        self._ray.cancel(self._ref, force=True)
        deadline = time.monotonic() + max(grace_s, 30)
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._tail)
