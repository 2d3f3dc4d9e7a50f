"""Task files: a user task from a CSV + YAML runs with no code; the built-in tasks read the shipped data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from commons.ml.eval.tasks import TaskError, build_items, builtin_tasks, load_docs, load_tasks, task_from_dict

# The benchmark folders of the evaluation research note (outside the repo; tests that need them skip).
SHARED_DATA = Path(os.environ.get("COMMONS_EVAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))

QUIZ_CSV = """question,a,b,c,answer
What colour is the sky on a clear day?,green,blue,red,blue
How many legs does a spider have?,eight,six,four,eight
What do bees make?,milk,silk,honey,honey
Which animal barks?,cat,dog,cow,dog
"""

QUIZ_YAML = """\
name: tiny_quiz
type: multiple_choice
version: 2
description: A four-question quiz, to show that a task needs no code.
data:
  files: [quiz.csv]
text: "Question: {{question}}\\nAnswer:"
choices: ["{{a}}", "{{b}}", "{{c}}"]
target: "{{answer}}"
metrics: [acc, acc_norm]
"""


def test_custom_csv_task_parses_and_renders(tmp_path: Path) -> None:
    (tmp_path / "quiz.csv").write_text(QUIZ_CSV)
    (tmp_path / "commons-task.yaml").write_text(QUIZ_YAML)
    [task] = load_tasks(tmp_path / "commons-task.yaml")
    items = build_items(task, load_docs(task, tmp_path))
    assert [it.targets for it in items] == [(1,), (0,), (2,), (1,)]
    assert items[0].text == "Question: What colour is the sky on a clear day?\nAnswer:"
    assert items[0].requests(task.target_delimiter)[1] == (items[0].text, " blue")


def test_custom_csv_task_runs_end_to_end_without_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from commons.ml.eval import harness, loglik
    from commons.ml.eval.tiny import tiny_model_dir

    data = tmp_path / "quiz-repo"
    data.mkdir()
    (data / "quiz.csv").write_text(QUIZ_CSV)
    (data / "commons-task.yaml").write_text(QUIZ_YAML)
    model_dir = tiny_model_dir(tmp_path / "model", [QUIZ_CSV])
    out = tmp_path / "results.json"
    assert harness.main(["--model", str(model_dir), "--task", str(data / "commons-task.yaml"), "--out", str(out)]) == 0
    [result] = json.loads(out.read_text())
    assert result["task"] == "tiny_quiz" and result["n"] == 4 and result["task_version"] == "2"
    acc = next(m for m in result["metrics"] if m["name"] == "acc")
    # The same accuracy from the reference computation, by hand.
    model, tok = harness.load_model(model_dir, harness.RunSettings())
    [task] = load_tasks(data / "commons-task.yaml")
    correct = 0
    for it in build_items(task, load_docs(task, data)):
        lps = [s.logprob for s in loglik.loglik_reference(model, tok, it.requests(" "))]
        correct += lps.index(max(lps)) in it.targets
    assert acc["value"] == correct / 4 and acc["n"] == 4 and acc["better"] == "higher"
    assert acc["stderr"] is not None
    assert set(result["dataset"]["files"]) == {"quiz.csv"}
    # The typed result round-trips through JSON (what the eval job stores).
    assert harness.TaskResult.from_json(result).to_json() == result
    assert harness.TaskResult.from_json(result).metric("acc").n == 4

    # The entry point the eval job calls: the dataset's repo and sha go into the result; progress is reported.
    events: list[str] = []

    class Reporter:
        def log(self, message: str, level: str = "info") -> None:
            events.append(message)

        def progress(self, step: int, total: int, **metrics: float | int | None) -> None:
            events.append(f"{step}/{total}")

    [typed] = harness.run_tasks(model_dir, [task], {"tiny_quiz": harness.DatasetSource(data, "alice/quiz", "a" * 40)},
                                harness.RunSettings(limit=2), Reporter())
    assert (typed.dataset.repo, typed.dataset.sha, typed.n, typed.n_total) == ("alice/quiz", "a" * 40, 2, 4)
    assert typed.settings.scoring_key()["limit"] == 2 and typed.harness_version == harness.HARNESS_VERSION
    assert "tiny_quiz: starting" in events and any("/" in e for e in events)
    with pytest.raises(TaskError, match="no data directory"):
        harness.run_tasks(model_dir, [task], {}, harness.RunSettings())


def test_bad_task_files_are_rejected_with_the_field_named() -> None:
    base = {"name": "t", "type": "multiple_choice", "data": {"files": ["x.csv"]}, "choices": "c", "target": 0}
    with pytest.raises(TaskError, match="unknown field"):
        task_from_dict({**base, "promt": "x"})
    with pytest.raises(TaskError, match="do not apply"):
        task_from_dict({**base, "metrics": ["bits_per_byte"]})
    with pytest.raises(TaskError, match="unknown processor"):
        task_from_dict({**base, "data": {"files": ["x.csv"], "process": "os.system"}})
    with pytest.raises(TaskError, match="bad template"):
        task_from_dict({**base, "text": "{{ unclosed"})


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("q\nhello\n")
    task = task_from_dict({"name": "t", "type": "multiple_choice", "data": {"files": ["d.csv"]},
                           "text": "{{ q.__class__.__mro__[1].__subclasses__() }}", "choices": ["a"], "target": 0})
    with pytest.raises(TaskError):
        build_items(task, load_docs(task, tmp_path))


def test_data_files_must_stay_inside_the_dataset(tmp_path: Path) -> None:
    task = task_from_dict({"name": "t", "type": "perplexity", "data": {"files": ["../secret.txt"]}, "text": "{{text}}"})
    with pytest.raises(TaskError, match="outside"):
        load_docs(task, tmp_path)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_every_builtin_task_reads_its_data() -> None:
    tasks = builtin_tasks()
    assert {"hellaswag", "piqa", "truthfulqa_mc1", "truthfulqa_mc2", "crows_pairs", "bbq", "winobias",
            "wikitext2", "tinyshakespeare", "xstest_safe", "xstest_unsafe", "advbench", "harmbench"} <= set(tasks)
    counts = {}
    for name, task in tasks.items():
        assert task.dataset is not None
        items = build_items(task, load_docs(task, SHARED_DATA / task.dataset))
        counts[name] = len(items)
    assert counts["hellaswag"] == 2000 and counts["piqa"] == 1287 and counts["crows_pairs"] == 1055
    assert counts["truthfulqa_mc1"] == 572 and counts["bbq"] == 7800 and counts["xstest_safe"] == 180
    assert counts["xstest_unsafe"] == 144 and tasks["xstest_safe"].better["refusal_rate"] == "lower"
    # TruthfulQA: the single true MC1 answer is listed first (lm-eval scores target 0).
    task = tasks["truthfulqa_mc1"]
    for doc in load_docs(task, SHARED_DATA / "truthfulqa"):
        assert doc["mc1_labels"][0] == 1 and sum(doc["mc1_labels"]) == 1
