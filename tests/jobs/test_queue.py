"""Queue semantics on SQLite and on a real PostgreSQL: claim, heartbeat, finish, cancel, recover."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from commons.db.models import Job, JobEvent
from commons.jobs import queue
from commons.jobs.states import InvalidJobTransition, JobState
from commons.services import Services
from tests.jobs.local import local_services, user_actor

SPEC = {"base": {"repo_id": "a/b", "revision": "0" * 40}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database(f"jobs_{uuid.uuid4().hex[:8]}")
    built = local_services(tmp_path / "home", url)
    user_actor(built, "alice")
    yield built
    built.close()


def _submit(services: Services, n: int = 1, **kw: object) -> list[int]:
    with services.session() as session:
        return [queue.submit(session, "finetune", SPEC, None, **kw).id for _ in range(n)]  # type: ignore[arg-type]


def _job(services: Services, job_id: int) -> Job:
    with services.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_claim_is_fifo_and_marks_running(services: Services) -> None:
    first, second = _submit(services, 2)
    with services.session() as session:
        job = queue.claim_next(session, "w1")
        assert job is not None and job.id == first
        assert job.state == "running" and job.worker == "w1" and job.attempts == 1 and job.heartbeat_at
    with services.session() as session:
        job = queue.claim_next(session, "w2")
        assert job is not None and job.id == second
        assert queue.claim_next(session, "w3") is None


def test_concurrent_claimers_never_share_a_job(services: Services) -> None:
    ids = set(_submit(services, 40))
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            while True:
                with services.session() as session:
                    job = queue.claim_next(session, name)
                    if job is None:
                        return
                    with lock:
                        claimed.append((name, job.id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    got = [job_id for _, job_id in claimed]
    assert len(got) == len(set(got)) == len(ids) and set(got) == ids
    with services.session() as session:
        rows = session.query(Job).filter(Job.id.in_(ids)).all()
        assert all(r.state == "running" and r.attempts == 1 for r in rows)
        assert {(r.worker, r.id) for r in rows} == set(claimed)


def test_heartbeat_finish_and_events(services: Services) -> None:
    (job_id,) = _submit(services)
    with services.session() as session:
        queue.claim_next(session, "w1")
    with services.session() as session:
        assert queue.heartbeat(session, job_id, "w1", {"step": 3}) is False
        assert queue.heartbeat(session, job_id, "intruder") is None
    with services.session() as session:
        assert not queue.finish(session, job_id, "intruder", JobState.SUCCEEDED)
        assert queue.finish(session, job_id, "w1", JobState.SUCCEEDED, {"commit": "x"})
    job = _job(services, job_id)
    assert job.state == "succeeded" and job.result == {"commit": "x"} and job.progress == {"step": 3}
    assert job.finished_at is not None
    with services.session() as session:
        # Terminal: nobody can move it again.
        assert not queue.finish(session, job_id, "w1", JobState.FAILED)
        states = [e.data["state"] for e in session.query(JobEvent).filter_by(job_id=job_id, kind="state")]
    assert states == ["queued", "running", "succeeded"]


def test_cancel_queued_running_and_finished(services: Services) -> None:
    queued, running = _submit(services, 2)
    with services.session() as session:
        assert queue.request_cancel(session, queued) is JobState.CANCELLED
    with services.session() as session:
        job = queue.claim_next(session, "w1")
        assert job is not None and job.id == running  # the cancelled one is never claimed
    with services.session() as session:
        assert queue.request_cancel(session, running) is JobState.RUNNING
    with services.session() as session:
        assert queue.heartbeat(session, running, "w1") is True
        queue.finish(session, running, "w1", JobState.CANCELLED, error="cancelled")
    with services.session() as session, pytest.raises(InvalidJobTransition):
        queue.request_cancel(session, running)
    assert _job(services, queued).state == "cancelled"


def _age_heartbeat(services: Services, job_id: int, seconds: float) -> None:
    with services.session() as session:
        session.execute(update(Job).where(Job.id == job_id)
                        .values(heartbeat_at=queue.now() - timedelta(seconds=seconds)))


def test_recover_requeues_then_fails(services: Services) -> None:
    (job_id,) = _submit(services, max_attempts=2)
    with services.session() as session:
        queue.claim_next(session, "dead-1")
    with services.session() as session:
        assert queue.recover_stale(session, 60) == []  # fresh heartbeat: left alone
    _age_heartbeat(services, job_id, 120)
    with services.session() as session:
        assert queue.recover_stale(session, 60) == [(job_id, JobState.QUEUED)]
    job = _job(services, job_id)
    assert job.state == "queued" and job.worker is None and "re-queued" in (job.error or "")
    with services.session() as session:
        assert queue.claim_next(session, "dead-2") is not None
    _age_heartbeat(services, job_id, 120)
    with services.session() as session:
        assert queue.recover_stale(session, 60) == [(job_id, JobState.FAILED)]
        # The dead worker's late heartbeat finds the job gone.
        assert queue.heartbeat(session, job_id, "dead-2") is None
    job = _job(services, job_id)
    assert job.state == "failed" and job.attempts == 2 and "gave up after 2" in (job.error or "")


def test_recover_honours_a_requested_cancel(services: Services) -> None:
    (job_id,) = _submit(services)
    with services.session() as session:
        queue.claim_next(session, "dead")
    with services.session() as session:
        queue.request_cancel(session, job_id)
    _age_heartbeat(services, job_id, 120)
    with services.session() as session:
        assert queue.recover_stale(session, 60) == [(job_id, JobState.CANCELLED)]


def test_a_fresh_heartbeat_wins_against_recovery(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    (job_id,) = _submit(services)
    with services.session() as session:
        queue.claim_next(session, "slow")
    _age_heartbeat(services, job_id, 120)
    move = queue._move

    def beat_first(*args: object, **kwargs: object) -> bool:
        # The worker beats between recovery's SELECT and its UPDATE: the conditional UPDATE must lose.
        with services.session() as beating:
            assert queue.heartbeat(beating, job_id, "slow") is False
        return move(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(queue, "_move", beat_first)
    with services.session() as recovering:
        assert queue.recover_stale(recovering, 60) == []
    assert _job(services, job_id).state == "running"


def test_a_worker_known_dead_is_recovered_at_once(services: Services) -> None:
    import socket

    from commons.jobs.worker import _dead_local_worker

    (job_id,) = _submit(services)
    with services.session() as session:
        queue.claim_next(session, "w1")
    with services.session() as session:
        assert queue.recover_stale(session, 3600, dead_workers=["w2"]) == []
        assert queue.recover_stale(session, 3600, dead_workers=["w1"]) == [(job_id, JobState.QUEUED)]
    host = socket.gethostname()
    assert _dead_local_worker(f"{host}:999999999:abc")
    assert not _dead_local_worker(f"{host}:1:abc")  # pid 1 is alive
    assert not _dead_local_worker("elsewhere:999999999:abc")
