"""Evaluation jobs end to end on a live hub: submit over the API, a worker runs them in child processes,
results land in the table, in `.eval_results/` and in the card's model-index (read back by
huggingface_hub), the report card flags a regression against the parent, a non-writer's evaluation
becomes a pull request, and the pages and the leaderboard show it all (private models only to those
who may see them)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.hubserver import HubServer, free_port, new_home

QUIZ_CSV = """question,a,b,c,answer
What colour is the sky on a clear day?,green,blue,red,blue
How many legs does a spider have?,eight,six,four,eight
What do bees make?,milk,silk,honey,honey
Which animal barks?,cat,dog,cow,dog
What do cows drink?,water,milk,oil,water
Which one is a fruit?,apple,stone,chair,apple
"""
PROSE = """The quick brown fox jumps over the lazy dog.
A man is standing in front of a camera.
The woman poured the milk into a glass.
He starts playing a harmonica for the camera.
"""
# A dataset repo that brings its own tasks: no code, one YAML file.
TASKS = """tasks:
- name: tiny_quiz
  type: multiple_choice
  version: 1
  data: {files: [quiz.csv]}
  text: "Question: {{question}}\\nAnswer:"
  choices: ["{{a}}", "{{b}}", "{{c}}"]
  target: "{{answer}}"
  metrics: [acc_norm, acc]      # the first is the task's headline
- name: tiny_prose
  type: perplexity
  version: 1
  data: {files: [prose.txt], format: lines}
  text: "{{line}}"
  metrics: [bits_per_byte, word_perplexity]
"""
PARENT_CARD = "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# Tiny\n\nA random model.\n"
CHILD_CARD = ("---\nlicense: mit\nbase_model: alice/tiny\nbase_model_relation: finetune\n---\n"
              "# Tiny, sharpened\n\nThe parent with its output layer scaled up: confidently wrong.\n")


@dataclass
class World:
    hub: HubServer
    services: Any
    jobs: dict[str, dict[str, Any]]
    commits: dict[str, str]


def _models(root: Path) -> tuple[Path, Path]:
    import torch
    from transformers import AutoModelForCausalLM

    from commons.ml.eval.tiny import tiny_model_dir

    parent = tiny_model_dir(root / "parent", [QUIZ_CSV, PROSE])
    (parent / "README.md").write_text(PARENT_CARD)
    child = root / "child"
    shutil.copytree(parent, child)
    model = AutoModelForCausalLM.from_pretrained(child)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # sharper random predictions: a much worse perplexity
    model.save_pretrained(child)
    (child / "README.md").write_text(CHILD_CARD)
    return parent, child


def _submit(hub: HubServer, user: str, model: str, tasks: list[str], **settings: Any) -> dict[str, Any]:
    body = {"model": model, "tasks": [{"name": t, "dataset": "alice/quiz"} for t in tasks],
            "settings": {"num_threads": 1, "bootstrap_iters": 100, **settings}}
    r = httpx.post(f"{hub.url}/api/commons/evals", json=body, timeout=30,
                   headers={"authorization": f"Bearer {hub.tokens[user]}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    pytest.importorskip("torch")
    from commons.config import Settings
    from commons.jobs.worker import Worker
    from commons.services import build_services
    from tests.jobs.conftest import fast_options

    root = new_home("commons-evals-")
    hub = HubServer(root / "home", free_port(), extra_env={"COMMONS_JOBS_EMBEDDED": "false",
                                                          "COMMONS_AUTH_FAILURES_PER_MINUTE": "100000"})
    hub.provision()
    hub.start()
    services = build_services(Settings(home=hub.home))
    try:
        api = hub.api("alice")
        parent, child = _models(root)
        data = root / "quiz"
        data.mkdir()
        (data / "quiz.csv").write_text(QUIZ_CSV)
        (data / "prose.txt").write_text(PROSE)
        (data / "commons-task.yaml").write_text(TASKS)
        (data / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# Tiny quiz\n")
        commits = {}
        for repo_id, folder, kind in (("alice/tiny", parent, "model"), ("alice/tiny-sharp", child, "model"),
                                      ("alice/quiz", data, "dataset")):
            api.create_repo(repo_id, repo_type=kind)
            commits[repo_id] = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=kind).oid
        jobs = {
            "parent": _submit(hub, "alice", "alice/tiny", ["tiny_quiz", "tiny_prose"]),
            "child": _submit(hub, "alice", "alice/tiny-sharp", ["tiny_quiz", "tiny_prose"]),
            "bob": _submit(hub, "bob", "alice/tiny", ["tiny_quiz"], limit=4),
        }
        # One worker per job, side by side: the owner's commit and bob's pull request race on alice/tiny.
        workers = [Worker(services, fast_options()) for _ in jobs]
        threads = [threading.Thread(target=w.run_once) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        yield World(hub, services, jobs, commits)
    finally:
        services.close()
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)


def _job(world: World, name: str) -> Any:
    from commons.db.models import Job

    with world.services.session() as session:
        job = session.get(Job, world.jobs[name]["id"])
        assert job is not None
        session.expunge(job)
        return job


def _results(world: World, model: str, user: str | None = "alice") -> httpx.Response:
    headers = {"authorization": f"Bearer {world.hub.tokens[user]}"} if user else {}
    return httpx.get(f"{world.hub.url}/api/commons/evals/models/{model}", headers=headers, timeout=30)


def test_submit_pins_every_input(world: World) -> None:
    spec = world.jobs["parent"]["spec"]
    assert spec["model"] == {"repo_id": "alice/tiny", "revision": world.commits["alice/tiny"], "repo_type": "model"}
    assert {t["dataset"]["revision"] for t in spec["tasks"]} == {world.commits["alice/quiz"]}


def test_results_reach_the_table_the_files_and_the_card(world: World, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    job = _job(world, "parent")
    assert job.state == "succeeded", job.error
    body = _results(world, "alice/tiny", None).json()
    mine = [r for r in body["results"] if r["writtenTo"] == job.result["commit"] and not r["subgroup"]]
    by_metric = {(r["task"], r["metric"]): r for r in mine}
    assert set(by_metric) == {("tiny_quiz", "acc"), ("tiny_quiz", "acc_norm"), ("tiny_prose", "bits_per_byte"),
                              ("tiny_prose", "word_perplexity")}
    quiz = by_metric[("tiny_quiz", "acc_norm")]
    assert quiz["headline"] and quiz["n"] == 6 and quiz["modelSha"] == world.commits["alice/tiny"]
    assert quiz["dataset"] == {"repo": "alice/quiz", "sha": world.commits["alice/quiz"]}
    assert quiz["ci95"][0] <= quiz["value"] <= quiz["ci95"][1] and quiz["category"] == "capability"
    # .eval_results: the Hub's format, and the whole record next to it.
    api = world.hub.api(None)
    entries = yaml.safe_load(Path(api.hf_hub_download("alice/tiny", ".eval_results/tiny_quiz.yaml")).read_text())
    dataset = {"id": "alice/quiz", "task_id": "tiny_quiz", "revision": world.commits["alice/quiz"]}
    assert entries == [{"dataset": dataset, "value": round(quiz["value"], 6), "date": entries[0]["date"],
                        "source": {"name": f"Commons evaluation (job {job.id})"}, "notes": "acc_norm, zero-shot"}]
    assert api.hf_hub_download("alice/tiny", ".eval_results/tiny_prose.json")
    # model-index in the card, as huggingface_hub reads it; the rest of the card is untouched.
    card = ModelCard.load(api.hf_hub_download("alice/tiny", "README.md"))
    assert card.data.license == "apache-2.0" and card.text.strip().startswith("# Tiny\n\nA random model.")
    got = {(r.task_name, r.metric_type): r for r in card.data.eval_results}
    assert got[("tiny_quiz", "acc_norm")].metric_value == pytest.approx(quiz["value"], abs=1e-6)
    assert got[("tiny_quiz", "acc_norm")].dataset_type == "alice/quiz"
    assert got[("tiny_quiz", "acc_norm")].dataset_revision == world.commits["alice/quiz"]
    assert got[("tiny_quiz", "acc_norm")].metric_args["n"] == 6
    assert [r.metric_type for r in card.data.eval_results if r.task_name == "tiny_quiz"] == ["acc_norm", "acc"]
    # One commit on top of the upload, by the job's owner.
    commits = api.list_repo_commits("alice/tiny")
    assert commits[0].commit_id == job.result["commit"] and "Evaluate alice/tiny" in commits[0].title


def test_regression_against_the_parent_is_flagged(world: World) -> None:
    assert _job(world, "child").state == "succeeded"
    body = _results(world, "alice/tiny-sharp").json()
    assert body["parent"] == "alice/tiny"
    flagged = {(r["task"], r["metric"]) for r in body["regressions"]}
    assert ("tiny_prose", "bits_per_byte") in flagged
    line = next(r for r in body["card"]["capability"] if r["metric"] == "bits_per_byte")
    assert line["parent"]["diff"] > 0.02 and line["parent"]["regression"] and line["parent"]["significant"] in (
        True, False)


def test_a_non_writer_opens_a_pull_request(world: World) -> None:
    job = _job(world, "bob")
    assert job.state == "succeeded", job.error
    api = world.hub.api("alice")
    [pr] = [d for d in api.get_repo_discussions("alice/tiny") if d.is_pull_request]
    assert pr.author == "bob" and pr.status == "open" and "Evaluate alice/tiny on tiny_quiz" in pr.title
    files = api.list_repo_files("alice/tiny", revision=pr.git_reference)
    assert ".eval_results/tiny_quiz.yaml" in files
    # main has the owner's evaluation only.
    assert api.list_repo_commits("alice/tiny")[0].commit_id == _job(world, "parent").result["commit"]
    rows = [r for r in _results(world, "alice/tiny").json()["results"] if r["writtenTo"] == pr.git_reference]
    assert rows and all(r["n"] == 4 for r in rows if not r["subgroup"])


def test_pages_and_leaderboard(world: World) -> None:
    web = httpx.Client(base_url=world.hub.url, timeout=30)
    page = web.get("/alice/tiny-sharp")
    assert page.status_code == 200
    assert "Evaluation" in page.text and "regression" in page.text.lower() and "<svg" in page.text
    tab = web.get("/alice/tiny-sharp/evaluation")
    assert tab.status_code == 200 and "tiny_prose" in tab.text and "alice/tiny" in tab.text
    assert world.commits["alice/tiny-sharp"][:7] in tab.text  # the revision it was measured at
    board = web.get("/leaderboard", params={"task": "tiny_prose"})
    assert board.status_code == 200
    text = board.text
    assert text.index("alice/tiny<") < text.index("alice/tiny-sharp<")  # lower bits per byte ranks first
    licensed = web.get("/leaderboard", params={"task": "tiny_prose", "license": "mit"}).text
    assert "alice/tiny-sharp" in licensed and "alice/tiny<" not in licensed
    based = web.get("/leaderboard", params={"task": "tiny_prose", "base_model": "alice/tiny"}).text
    assert "alice/tiny-sharp" in based and "alice/tiny<" not in based
    assert 'href="/leaderboard"' in web.get("/").text


def test_private_results_only_for_those_who_can_see(world: World) -> None:
    api = world.hub.api("alice")
    api.update_repo_settings("alice/tiny-sharp", private=True)
    try:
        assert _results(world, "alice/tiny-sharp", "bob").status_code == 404
        assert _results(world, "alice/tiny-sharp", None).status_code == 401
        assert _results(world, "alice/tiny-sharp", "alice").status_code == 200
        board = httpx.get(f"{world.hub.url}/api/commons/evals/leaderboard", params={"task": "tiny_prose"}).json()
        assert [e["model"] for e in board["entries"]] == ["alice/tiny"]
        mine = httpx.get(f"{world.hub.url}/api/commons/evals/leaderboard", params={"task": "tiny_prose"},
                         headers={"authorization": f"Bearer {world.hub.tokens['alice']}"}).json()
        assert [e["model"] for e in mine["entries"]] == ["alice/tiny", "alice/tiny-sharp"]
        assert "alice/tiny-sharp" not in httpx.get(f"{world.hub.url}/leaderboard?task=tiny_prose").text
    finally:
        api.update_repo_settings("alice/tiny-sharp", private=False)


def test_commons_eval_queues_a_job(world: World) -> None:
    from typer.testing import CliRunner

    from commons.cli import app

    env = {"COMMONS_HOME": str(world.hub.home)}
    run = CliRunner().invoke(app, ["eval", "alice/tiny-sharp", "--task", "tiny_quiz=alice/quiz", "--limit", "2",
                                   "--user", "bob"], env=env)
    assert run.exit_code == 0, run.output
    job_id = int(run.output.split()[1])
    with world.services.session() as session:
        from commons.db.models import Job

        job = session.get(Job, job_id)
        assert job is not None and job.kind == "eval" and job.state == "queued"
        assert job.spec["model"]["revision"] == world.hub.api(None).model_info("alice/tiny-sharp").sha  # main now
        assert job.spec["tasks"] == [{"name": "tiny_quiz", "dataset": {
            "repo_id": "alice/quiz", "revision": world.commits["alice/quiz"], "repo_type": "dataset"}}]
        assert job.spec["settings"]["limit"] == 2
        job.state = "cancelled"  # nobody runs it
        session.commit()
    unknown = CliRunner().invoke(app, ["eval", "alice/tiny", "--task", "nonesuch"], env=env)
    assert unknown.exit_code == 2 and "not a built-in task" in unknown.output
