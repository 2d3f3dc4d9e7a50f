"""Waiting on jobs and finding their child processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from commons.db.models import Job, JobEvent
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.services import Services


def wait_for(condition: Callable[[], object], timeout: float = 60, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def job_row(services: Services, job_id: int) -> Job:
    with services.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def training_step(services: Services, job_id: int) -> int:
    return int(job_row(services, job_id).progress.get("step", 0) or 0)


def wait_until_training(services: Services, job_id: int, timeout: float = 90) -> None:
    wait_for(lambda: training_step(services, job_id) >= 1, timeout, f"job {job_id} to train")


def wait_until_done(services: Services, job_id: int, timeout: float = 120) -> Job:
    wait_for(lambda: job_row(services, job_id).state in ("succeeded", "failed", "cancelled"), timeout,
             f"job {job_id} to end")
    return job_row(services, job_id)


def events(services: Services, job_id: int) -> list[JobEvent]:
    with services.session() as session:
        return list(session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id))


def repo_exists(services: Services, repo_id: str) -> bool:
    with services.session() as session:
        return Repos(session, services.storage).find(RepoRef.parse(RepoType.MODEL, repo_id)) is not None


def job_children(job_id: int) -> list[int]:
    """Pids of `commons.ml.run` processes working on this job (any attempt)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"commons.ml.run" in cmdline and any(f"/job-{job_id}-".encode() in part for part in cmdline):
            pids.append(int(proc.name))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
