"""The worker: claim a job, materialise its inputs, run it in a child, stream its events, publish.

    claim (queue) ─► inputs (hub → workdir/inputs) ─► child: python -m commons.ml.run spec.json workdir
                                                          │ JSON lines ─► job_events, jobs.progress
       heartbeat thread ◄── cancel flag / lost job ───────┤ timeout, cancel, stop ─► SIGTERM, SIGKILL
                                                          ▼
                       result.json ok ─► publish (new repo, one commit) ─► succeeded; else failed

Every worker also recovers jobs whose worker died (no heartbeat for `stale_after_s`): re-queued
while attempts remain, failed otherwise, and any half-created output repo is removed.
`EmbeddedWorker` runs this loop on a thread of `commons serve`; `commons worker` runs it alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from commons import __version__
from commons.db.models import Job
from commons.jobs import queue
from commons.jobs.child import ChildEvent, ChildProcess, LocalChild
from commons.jobs.inputs import materialise
from commons.jobs.publish import discard_partial_output, owner_actor, publisher_for
from commons.jobs.states import JobState
from commons.ml.specs import SpecError, parse_spec
from commons.services import Services

log = logging.getLogger("commons.jobs")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs. `from_settings` reads the `jobs_*` settings where they exist."""

    backend: str = "local"
    """`local` (child processes) or `ray` (Ray tasks on `ray_address`)."""
    ray_address: str | None = None
    poll_s: float = 1.0
    """Sleep between claims when the queue is empty."""
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    """A running job without a heartbeat for this long belongs to a dead worker."""
    recover_every_s: float = 15.0
    stop_grace_s: float = 10.0
    """Between SIGTERM and SIGKILL when a child is stopped."""
    flush_s: float = 0.5
    """How often events are written to the database."""
    work_root: Path | None = None
    """Where job directories go (default: `$COMMONS_HOME/jobs`)."""
    python: str = sys.executable
    child_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> WorkerOptions:
        values: dict[str, Any] = {}
        for name in ("backend", "ray_address", "heartbeat_s", "stale_after_s", "poll_s"):
            value = getattr(settings, f"jobs_{name}", None)
            if value is not None:
                values[name] = value
        return cls(**{**values, **overrides})


@dataclass
class _Outcome:
    exit_code: int | None = None
    stopped_for: str | None = None  # cancel | timeout | shutdown | lost
    result: dict[str, Any] = field(default_factory=dict)


class _Heartbeat(threading.Thread):
    """Beats for one job until stopped; raises the flags the job loop reacts to."""

    def __init__(self, services: Services, job_id: int, worker: str, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.services, self.job_id, self.worker, self.interval = services, job_id, worker, interval
        self.done = threading.Event()
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self.progress: dict[str, Any] | None = None

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        try:
            with self.services.session() as session:
                answer = queue.heartbeat(session, self.job_id, self.worker, self.progress)
        except Exception:  # a database hiccup must not kill the job; the next beat retries
            log.exception("heartbeat of job %s failed", self.job_id)
            return
        if answer is None:
            self.lost.set()
        elif answer:
            self.cancel.set()


class Worker:
    """Claims and runs jobs one at a time."""

    def __init__(self, services: Services, options: WorkerOptions | None = None, name: str | None = None) -> None:
        self.services = services
        self.options = options or WorkerOptions.from_settings(services.settings)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.root = self.options.work_root or services.settings.home / "jobs"
        self.stopping = threading.Event()
        self._last_recovery = 0.0

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        """Work until `stopping` is set."""
        while not self.stopping.is_set():
            if self.run_once() is None:
                self.stopping.wait(self.options.poll_s)

    def run_once(self) -> int | None:
        """Recover stale jobs if due, then claim and run one job; its id, or None when the queue was empty."""
        if time.monotonic() - self._last_recovery >= self.options.recover_every_s:
            self.recover()
        with self.services.session() as session:
            job = queue.claim_next(session, self.name)
            if job is None:
                return None
            session.expunge(job)
        self.execute(job)
        return job.id

    def recover(self) -> list[tuple[int, JobState]]:
        self._last_recovery = time.monotonic()
        with self.services.session() as session:
            running = session.scalars(select(Job).where(Job.state == JobState.RUNNING.value)).all()
            started = {j.id: j.started_at for j in running}
            dead = [j.worker for j in running if j.worker and _dead_local_worker(j.worker)]
            recovered = queue.recover_stale(session, self.options.stale_after_s, dead)
        for job_id, state in recovered:
            log.warning("job %s: worker lost, now %s", job_id, state.value)
            with self.services.session() as session:
                job = session.get(Job, job_id)
                if job is not None and discard_partial_output(session, self.services.storage, job,
                                                              started.get(job_id)):
                    queue.add_event(session, job_id, "log", {"level": "warning",
                                                             "message": "removed a half-created output repo"})
        self._sweep_workdirs()
        return recovered

    def _sweep_workdirs(self) -> None:
        """Delete job directories left by dead workers (those of running attempts stay)."""
        if not self.root.is_dir():
            return
        with self.services.session() as session:
            live = {f"job-{i}-{a}" for i, a in session.execute(
                select(Job.id, Job.attempts).where(Job.state == JobState.RUNNING.value))}
        for path in self.root.glob("job-*-*"):
            if path.is_dir() and path.name not in live:
                shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------ one job
    def execute(self, job: Job) -> None:
        workdir = self.root / f"job-{job.id}-{job.attempts}"
        shutil.rmtree(workdir, ignore_errors=True)
        beat = _Heartbeat(self.services, job.id, self.name, self.options.heartbeat_s)
        beat.start()
        try:
            state, result, error = self._execute(job, workdir, beat)
        except Exception as exc:  # anything unexpected fails the job, never the worker
            log.exception("job %s crashed in the worker", job.id)
            state, result, error = JobState.FAILED, None, f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        finally:
            beat.done.set()
            beat.join()
            shutil.rmtree(workdir, ignore_errors=True)
        if beat.lost.is_set():
            log.warning("job %s was taken over by recovery; dropping our result", job.id)
            return
        with self.services.session() as session:
            if state is JobState.QUEUED:
                # A shutdown is not the job's fault: give the attempt back.
                session.execute(update(Job).where(Job.id == job.id, Job.worker == self.name,
                                                  Job.state == JobState.RUNNING.value)
                                .values(attempts=Job.attempts - 1))
            final = {**(beat.progress or {}), "phase": state.value}
            queue.finish(session, job.id, self.name, state, result, error, final)

    def _execute(self, job: Job, workdir: Path, beat: _Heartbeat
                 ) -> tuple[JobState, dict[str, Any] | None, str | None]:
        try:
            spec = parse_spec(job.kind, job.spec)
        except SpecError as exc:
            return JobState.FAILED, None, f"invalid spec: {exc}"
        self._note(job.id, "phase", {"name": "inputs"}, beat)
        with self.services.session() as session:
            actor = owner_actor(session, job)
            for name, repo_input in spec.inputs().items():
                done = materialise(session, self.services.storage, actor, repo_input.repo_type, repo_input.repo_id,
                                   repo_input.revision, workdir / "inputs" / name)
                self._note(job.id, "log", {"level": "info", "message": f"{name}: {repo_input.label}, {done.files} "
                                           f"files, {done.bytes / 1e6:.1f} MB"}, beat)
        (workdir / "spec.json").write_text(json.dumps(spec.to_json(), indent=2))
        (workdir / "job.json").write_text(json.dumps({"id": job.id, "attempt": job.attempts, "worker": self.name,
                                                      "commons_version": __version__}))
        outcome = self._run_child(job, workdir, beat)
        if outcome.stopped_for == "cancel":
            return JobState.CANCELLED, None, "cancelled"
        if outcome.stopped_for == "shutdown":
            return JobState.QUEUED, None, "worker stopped; re-queued"
        if outcome.stopped_for == "lost":
            return JobState.FAILED, None, "lost"
        if outcome.stopped_for == "timeout":
            return JobState.FAILED, None, f"timed out after {job.timeout_s} s"
        if outcome.exit_code != 0 or outcome.result.get("status") != "succeeded":
            error = outcome.result.get("error") or f"the job process exited with code {outcome.exit_code}"
            return JobState.FAILED, {"error_type": outcome.result.get("error_type", "crash")}, error
        result: dict[str, Any] = {k: outcome.result[k] for k in ("metrics", "timing", "outputs") if k in outcome.result}
        if spec.output_repo is not None:
            self._note(job.id, "phase", {"name": "publish"}, beat)
            with self.services.session() as session:
                fresh = session.get(Job, job.id)
                assert fresh is not None
                publish = publisher_for(job.kind)
                commit = publish(session, self.services.storage, fresh, spec, workdir / "output",
                                 result.get("metrics", {}))
            result |= {"output_repo": spec.output_repo, "commit": commit}
            self._note(job.id, "log", {"level": "info", "message": f"published {spec.output_repo}@{commit}"}, beat)
        return JobState.SUCCEEDED, result, None

    def _start_child(self, workdir: Path) -> ChildProcess:
        if self.options.backend == "ray":
            from commons.jobs.ray_backend import RayChild

            child: ChildProcess = RayChild(workdir / "spec.json", workdir, self.options.ray_address,
                                           self.options.child_env)
            return child
        return LocalChild(workdir / "spec.json", workdir, self.options.python, self.options.child_env)

    def _run_child(self, job: Job, workdir: Path, beat: _Heartbeat) -> _Outcome:
        child = self._start_child(workdir)
        deadline = time.monotonic() + job.timeout_s
        outcome = _Outcome()
        pending: list[ChildEvent] = []
        last_flush = time.monotonic()
        while True:
            code = child.poll()
            pending.extend(child.events(wait=0 if code is not None else 0.25))
            if code is not None:
                outcome.exit_code = code
                break
            reason = ("cancel" if beat.cancel.is_set() else "lost" if beat.lost.is_set()
                      else "shutdown" if self.stopping.is_set() else "timeout" if time.monotonic() > deadline
                      else None)
            if reason is not None:
                self._flush(job.id, pending, beat)
                pending = []
                if reason == "cancel" or reason == "timeout":
                    self._note(job.id, "log", {"level": "warning", "message": f"stopping the job ({reason})"}, beat)
                child.stop(self.options.stop_grace_s)
                outcome.stopped_for = reason
                pending.extend(child.events())
                break
            if pending and time.monotonic() - last_flush >= self.options.flush_s:
                self._flush(job.id, pending, beat)
                pending, last_flush = [], time.monotonic()
        self._flush(job.id, pending, beat)
        result_file = workdir / "result.json"
        if outcome.stopped_for is None and result_file.is_file():
            outcome.result = json.loads(result_file.read_text())
        if outcome.stopped_for is None and outcome.exit_code not in (0, None) and not outcome.result.get("error"):
            tail = "\n".join(child.stderr_tail[-15:])
            signal_note = f" (killed by signal {-outcome.exit_code})" if (outcome.exit_code or 0) < 0 else ""
            outcome.result["error"] = f"the job process exited with code {outcome.exit_code}{signal_note}\n{tail}"
        return outcome

    # ------------------------------------------------------------ events
    def _note(self, job_id: int, kind: str, data: dict[str, Any], beat: _Heartbeat) -> None:
        self._flush(job_id, [ChildEvent(queue.now(), kind, data)], beat)

    def _flush(self, job_id: int, events: list[ChildEvent], beat: _Heartbeat) -> None:
        if not events:
            return
        progress = dict(beat.progress or {})
        rows: list[tuple[Any, str, dict[str, Any]]] = []
        for event in events:
            if event.kind == "phase":
                progress["phase"] = event.data.get("name")
                rows.append((event.at, "log", {"level": "info", "message": f"phase: {event.data.get('name')}",
                                               "phase": event.data.get("name")}))
                continue
            if event.kind == "progress":
                progress.update({k: v for k, v in event.data.items()})
                progress["updated_at"] = event.at.isoformat()
            elif event.kind == "metric" and isinstance(event.data.get("name"), str):
                progress.setdefault("metrics", {})[event.data["name"]] = event.data.get("value")
            rows.append((event.at, event.kind, event.data))
        beat.progress = progress
        with self.services.session() as session:
            queue.add_events(session, job_id, rows)
            session.execute(update(Job).where(Job.id == job_id, Job.worker == self.name)
                            .values(progress=progress))


def _dead_local_worker(name: str) -> bool:
    """A worker named `host:pid:...` on this host whose process is gone (no need to wait for its heartbeat)."""
    host, _, rest = name.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class EmbeddedWorker:
    """A Worker on a daemon thread, for `commons serve`: `start()` at startup, `stop()` at shutdown."""

    def __init__(self, services: Services, options: WorkerOptions | None = None) -> None:
        self.worker = Worker(services, options)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.worker.stopping.clear()
        self._thread = threading.Thread(target=self._run, name="commons-job-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.worker.stopping.is_set():
            try:
                self.worker.run()
            except Exception:  # e.g. the database is briefly unreachable: keep the thread alive
                log.exception("job worker loop failed; retrying")
                self.worker.stopping.wait(5)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; a running job's child is stopped and the job re-queued for the next start."""
        self.worker.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
