"""Job states and the one table of allowed transitions.

    queued ──► running ──► succeeded
      │          │ │
      │          │ └──► failed      (child failed, timed out, or the worker was lost too often)
      │          ├────► cancelled   (cancel requested while running)
      │          └────► queued      (worker lost or stopped: picked up again by another worker)
      ├──► cancelled                (cancelled before a worker took it)
      └──► failed                   (the spec no longer validates when a worker claims it)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from commons.errors import CommonsError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class InvalidJobTransition(CommonsError):
    """A job was asked to move between states the table does not connect (e.g. cancel a finished job)."""

    def __init__(self, job_id: int | None, current: str, wanted: str) -> None:
        super().__init__(f"Job {job_id} is {current}; it cannot become {wanted}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


class JobNotFound(CommonsError):
    """No job with this id, or the caller may not see it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"Job not found: {job_id}")
        self.job_id = job_id


class HasState(Protocol):
    id: int
    state: str


def sources(target: JobState) -> frozenset[JobState]:
    """The states from which `target` can be reached (for conditional UPDATE ... WHERE state IN (...))."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_transition(current: str, target: JobState) -> bool:
    return target in TRANSITIONS[JobState(current)]


def transition(job: HasState, target: JobState) -> None:
    """Move `job` to `target`, or raise InvalidJobTransition."""
    if not can_transition(job.state, target):
        raise InvalidJobTransition(job.id, job.state, target.value)
    job.state = target.value
