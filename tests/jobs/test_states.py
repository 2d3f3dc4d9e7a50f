"""The transition table: every allowed move, every refused one."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import pytest

from commons.jobs.states import TRANSITIONS, InvalidJobTransition, JobState, can_transition, sources, transition

ALLOWED = {
    ("queued", "running"), ("queued", "cancelled"), ("queued", "failed"),
    ("running", "succeeded"), ("running", "failed"), ("running", "cancelled"), ("running", "queued"),
}


@dataclass
class FakeJob:
    id: int
    state: str


@pytest.mark.parametrize(("current", "target"), list(product(JobState, JobState)))
def test_transition_table(current: JobState, target: JobState) -> None:
    job = FakeJob(1, current.value)
    if (current.value, target.value) in ALLOWED:
        transition(job, target)
        assert job.state == target.value
    else:
        with pytest.raises(InvalidJobTransition) as info:
            transition(job, target)
        assert job.state == current.value
        assert info.value.current == current.value and info.value.wanted == target.value


def test_terminal_states_have_no_way_out() -> None:
    assert {s for s in JobState if s.terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    assert set(TRANSITIONS) == set(JobState)


def test_sources_invert_the_table() -> None:
    assert sources(JobState.RUNNING) == {JobState.QUEUED}
    assert sources(JobState.QUEUED) == {JobState.RUNNING}
    assert sources(JobState.CANCELLED) == {JobState.QUEUED, JobState.RUNNING}
    for target in JobState:
        assert all(can_transition(s.value, target) for s in sources(target))
