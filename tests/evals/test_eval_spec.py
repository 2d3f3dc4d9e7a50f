"""The eval job's spec: JSON round trip, one input per distinct dataset commit, refusals by field."""

from __future__ import annotations

import json

import pytest

from commons.ml.specs import EvalSpec, SpecError, parse_spec

A, B, C = "a" * 40, "b" * 40, "c" * 40


def spec_json(**settings: object) -> dict[str, object]:
    return {"kind": "eval", "model": {"repo_id": "alice/m", "revision": A},
            "tasks": [{"name": "truthfulqa_mc1", "dataset": {"repo_id": "benchmarks/truthfulqa", "revision": B}},
                      {"name": "truthfulqa_mc2", "dataset": {"repo_id": "benchmarks/truthfulqa", "revision": B}},
                      {"name": "piqa", "dataset": {"repo_id": "benchmarks/piqa", "revision": C}}],
            "settings": settings}


def test_round_trip_and_inputs() -> None:
    spec = parse_spec("eval", spec_json(limit=50, max_new_tokens=32))
    assert isinstance(spec, EvalSpec)
    assert EvalSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert list(spec.inputs()) == ["model", "data-0", "data-1"]  # two tasks share one dataset commit
    assert spec.data_dir_name(spec.tasks[1]) == "data-0" and spec.data_dir_name(spec.tasks[2]) == "data-1"
    assert spec.output_repo == "alice/m" and not spec.private
    assert spec.summary() == "Evaluate alice/m on truthfulqa_mc1, truthfulqa_mc2, piqa"


@pytest.mark.parametrize(("change", "message"), [
    ({"settings": {"limit": 0}}, "limit must be at least 1"),
    ({"settings": {"num_fewshot": 5}}, "zero-shot only"),
    ({"settings": {"dtype": "int3"}}, "dtype"),
    ({"settings": {"limt": 5}}, "unknown field"),
    ({"settings": {"limit": "5"}}, "EvalSettings.limit: expected int"),
    ({"tasks": []}, "at least one task"),
    ({"tasks": [{"name": "x y", "dataset": {"repo_id": "a/b", "revision": B}}]}, "invalid task name"),
    ({"tasks": [{"name": "x", "dataset": {"repo_id": "a/b", "revision": "main"}}]}, "not a commit sha"),
    ({"tasks": [{"name": "x", "dataset": {"repo_id": "a/b", "revision": B}}] * 2}, "named twice"),
    ({"tasks": [{"name": "x", "dataset": {"repo_id": "a/b", "revision": B, "repo_type": "model"}}]},
     "must read a dataset repo"),
    ({"model": {"repo_id": "alice/m", "revision": "main"}}, "not a commit sha"),
])
def test_refusals_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec("eval", {**spec_json(), **change})
