"""The job queue is the `jobs` table: submit, claim, heartbeat, finish, cancel, recover.

Every state change is one conditional UPDATE (`... WHERE id = :id AND state IN (sources)`), so
two processes can never both move a job: the loser sees rowcount 0. Claiming uses
`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers pass over each other's
rows instead of queueing on a lock; SQLite has a single writer, and the conditional UPDATE alone
decides who wins.

Functions take a Session and commit nothing: the caller's unit of work does (Services.session()).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from commons.db.models import Job, JobEvent
from commons.jobs.states import InvalidJobTransition, JobNotFound, JobState, sources

DEFAULT_TIMEOUT_S = 6 * 3600
MAX_ERROR = 4000


def now() -> datetime:
    return datetime.now(UTC)


def submit(session: Session, kind: str, spec: dict[str, Any], owner_id: int | None, spec_version: int = 1,
           timeout_s: int = DEFAULT_TIMEOUT_S, max_attempts: int = 2) -> Job:
    """Add a queued job. The spec must already be validated (see jobs/service.py)."""
    job = Job(kind=kind, spec=spec, spec_version=spec_version, state=JobState.QUEUED.value, owner_id=owner_id,
              created_at=now(), timeout_s=timeout_s, max_attempts=max_attempts, attempts=0,
              cancel_requested=False, progress={})
    session.add(job)
    session.flush()
    add_event(session, job.id, "state", {"state": JobState.QUEUED.value})
    return job


def add_event(session: Session, job_id: int, kind: str, data: dict[str, Any], at: datetime | None = None) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, data=data, at=at or now()))


def add_events(session: Session, job_id: int, events: Sequence[tuple[datetime, str, dict[str, Any]]]) -> None:
    session.add_all([JobEvent(job_id=job_id, kind=kind, data=data, at=at) for at, kind, data in events])


def _move(session: Session, job_id: int, target: JobState, *conditions: Any, **values: Any) -> bool:
    """One conditional UPDATE into `target`; True when this call moved the job."""
    stmt = (update(Job)
            .where(Job.id == job_id, Job.state.in_([s.value for s in sources(target)]), *conditions)
            .values(state=target.value, **values)
            .execution_options(synchronize_session=False))
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    moved = result.rowcount == 1
    if moved:
        add_event(session, job_id, "state", {"state": target.value, **_printable(values)})
    return moved


def _printable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in ("worker", "error") and v is not None}


def claim_next(session: Session, worker: str, kinds: Sequence[str] | None = None) -> Job | None:
    """Take the oldest queued job (of `kinds`) for `worker`: state running, attempts + 1. None if the queue is empty."""
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(20):  # on SQLite another worker may win a candidate; try the next one
        query = select(Job.id).where(Job.state == JobState.QUEUED.value, Job.cancel_requested.is_(False))
        if kinds:
            query = query.where(Job.kind.in_(list(kinds)))
        query = query.order_by(Job.created_at, Job.id).limit(1)
        if postgres:
            query = query.with_for_update(skip_locked=True)
        job_id = session.scalar(query)
        if job_id is None:
            return None
        stamp = now()
        if _move(session, job_id, JobState.RUNNING, worker=worker, started_at=stamp, heartbeat_at=stamp,
                 attempts=Job.attempts + 1, error=None):
            job = session.get(Job, job_id, populate_existing=True)
            assert job is not None
            return job
    return None


def heartbeat(session: Session, job_id: int, worker: str, progress: dict[str, Any] | None = None) -> bool | None:
    """Record that `worker` still runs the job. Returns whether cancel was requested, or None if the job
    is no longer this worker's (recovered by someone else): the worker must then stop and publish nothing."""
    values: dict[str, Any] = {"heartbeat_at": now()}
    if progress is not None:
        values["progress"] = progress
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == JobState.RUNNING.value)
        .values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish(session: Session, job_id: int, worker: str, state: JobState, result: dict[str, Any] | None = None,
           error: str | None = None, progress: dict[str, Any] | None = None) -> bool:
    """Move a running job of `worker` to a terminal state (or back to queued). False if it was not ours."""
    values: dict[str, Any] = {"error": error[-MAX_ERROR:] if error else None}
    if progress is not None:
        values["progress"] = progress
    if state is JobState.QUEUED:
        values |= {"worker": None, "started_at": None, "heartbeat_at": None}
    else:
        values["finished_at"] = now()
    if result is not None:
        values["result"] = result
    return _move(session, job_id, state, Job.worker == worker, Job.state == JobState.RUNNING.value, **values)


def request_cancel(session: Session, job_id: int) -> JobState:
    """Cancel a job: a queued one at once; a running one is flagged and its worker stops it. Returns the state."""
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    if _move(session, job_id, JobState.CANCELLED, Job.state == JobState.QUEUED.value, finished_at=now()):
        return JobState.CANCELLED
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING.value)
        .values(cancel_requested=True).execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        add_event(session, job_id, "log", {"level": "info", "message": "cancel requested"})
        return JobState.RUNNING
    session.refresh(job)
    raise InvalidJobTransition(job_id, job.state, JobState.CANCELLED.value)


def recover_stale(session: Session, stale_after_s: float, dead_workers: Sequence[str] = ()
                  ) -> list[tuple[int, JobState]]:
    """Jobs marked running whose worker stopped sending heartbeats (or is known dead): re-queue them while
    attempts remain, else fail them (a cancel that was requested wins). Returns (job id, new state) for each."""
    cutoff = now() - timedelta(seconds=stale_after_s)
    gone = or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff, Job.worker.in_(list(dead_workers)))
    stale = session.scalars(select(Job).where(Job.state == JobState.RUNNING.value, gone)).all()
    out: list[tuple[int, JobState]] = []
    for job in stale:
        lost = f"worker {job.worker} stopped sending heartbeats (last at {job.heartbeat_at})"
        fresh = and_(Job.worker == job.worker, gone)
        if job.cancel_requested:
            target, values = JobState.CANCELLED, {"finished_at": now(), "error": lost}
        elif job.attempts < job.max_attempts:
            target, values = JobState.QUEUED, {"worker": None, "started_at": None, "heartbeat_at": None,
                                               "error": f"{lost}; re-queued"}
        else:
            target, values = JobState.FAILED, {"finished_at": now(),
                                               "error": f"{lost}; gave up after {job.attempts} attempt(s)"}
        if _move(session, job.id, target, fresh, **values):
            out.append((job.id, target))
    return out


def events_after(session: Session, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
    return list(session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id).order_by(JobEvent.id).limit(limit)
    ))
