"""The worker with real child processes on an in-process hub: success, bad input, cancel, timeout, kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from commons.db.models import Job
from commons.hub.gitrepo import MAIN
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from commons.hub.trees import list_files
from commons.jobs.inputs import materialise
from commons.jobs.service import Jobs
from commons.jobs.worker import EmbeddedWorker, Worker
from tests.jobs.conftest import LocalHub, fast_options, finetune_spec
from tests.jobs.helpers import (
    alive,
    events,
    job_children,
    job_row,
    repo_exists,
    wait_for,
    wait_until_done,
    wait_until_training,
)

LONG = 1_000_000  # steps: a job that trains until something stops it


def submit(hub: LocalHub, spec: dict[str, object], **kw: object) -> int:
    with hub.services.session() as session:
        return Jobs(session, hub.services.storage).submit(hub.alice, "finetune", spec, **kw).id  # type: ignore[arg-type]


def test_merged_finetune_publishes_one_commit(local_hub: LocalHub, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    job_id = submit(local_hub, finetune_spec("alice/merged", merge=True))
    Worker(local_hub.services, fast_options()).run_once()
    job = job_row(local_hub.services, job_id)
    assert job.state == "succeeded", job.error
    with local_hub.services.session() as session:
        repos = Repos(session, local_hub.services.storage)
        git = repos.git(repos.get(local_hub.alice, RepoRef.parse(RepoType.MODEL, "alice/merged")))
        head = git.resolve(MAIN)
        assert head == job.result["commit"] and git.count_commits(head) == 2  # the initial commit + ours
        files = {f.path for f in list_files(git, head, recursive=True) if f.type == "file"}
        out = materialise(session, local_hub.services.storage, local_hub.alice, "model", "alice/merged", head,
                          tmp_path / "merged").path
        base = materialise(session, local_hub.services.storage, local_hub.alice, "model", "alice/tiny",
                           local_hub.base, tmp_path / "base").path
    assert {"model.safetensors", "config.json", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
            "README.md", "loss.png", "provenance.json", "tokenizer.json"} <= files
    card = (out / "README.md").read_text()
    assert "base_model: alice/tiny" in card and "base_model_relation: finetune" in card
    provenance = json.loads((out / "provenance.json").read_text())
    from commons.ml.provenance import sha256_file

    written = provenance["license"]["files"]  # README.md and NOTICE as the publisher's licensing step wrote them
    assert set(provenance["outputs"]) | set(written) == files - {"provenance.json", ".gitattributes"}
    for path, info in {**provenance["outputs"], **written}.items():
        assert sha256_file(out / path) == info["sha256"], path
    assert provenance["job"]["id"] == job_id and provenance["inputs"]["base"]["revision"] == local_hub.base
    # The merged weights are the base with the adapter folded in.
    ids = torch.tensor([[2, 9, 20, 21, 22, 4]])
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-5)


@pytest.mark.parametrize(("spec", "message"), [
    (finetune_spec("alice/bad-columns", instruction_column="question"),
     "has no column(s) 'question' named by the recipe (chat format); its columns are: instruction, response"),
    (finetune_spec("alice/bad-base", base="alice/bert"), "is a BertModel (bert), not a causal language model"),
    (finetune_spec("alice/bad-memory", batch_size=10_000_000),
     "lower batch_size or max_seq_len"),
], ids=["missing-column", "not-causal", "too-much-memory"])
def test_bad_input_fails_before_training(local_hub: LocalHub, spec: dict[str, object], message: str) -> None:
    job_id = submit(local_hub, spec)
    Worker(local_hub.services, fast_options()).run_once()
    job = job_row(local_hub.services, job_id)
    assert job.state == "failed" and message in (job.error or ""), job.error
    assert job.result == {"error_type": "input"}
    phases = [e.data.get("phase") for e in events(local_hub.services, job_id) if e.data.get("phase")]
    assert "train" not in phases and "load" not in phases
    assert not repo_exists(local_hub.services, str(spec["output_repo"]))


def _in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()
    return thread


def test_cancel_a_running_job(local_hub: LocalHub) -> None:
    job_id = submit(local_hub, finetune_spec("alice/cancelled", max_steps=LONG))
    thread = _in_thread(Worker(local_hub.services, fast_options()))
    wait_until_training(local_hub.services, job_id)
    (child,) = job_children(job_id)
    with local_hub.services.session() as session:
        Jobs(session, local_hub.services.storage).cancel(local_hub.alice, job_id)
    job = wait_until_done(local_hub.services, job_id, 30)
    thread.join(10)
    assert job.state == "cancelled" and not alive(child)
    assert not repo_exists(local_hub.services, "alice/cancelled")


def test_timeout_stops_the_job(local_hub: LocalHub) -> None:
    job_id = submit(local_hub, finetune_spec("alice/slow", max_steps=LONG), timeout_s=2)
    Worker(local_hub.services, fast_options()).run_once()
    job = job_row(local_hub.services, job_id)
    assert job.state == "failed" and job.error == "timed out after 2 s"
    assert not job_children(job_id) and not repo_exists(local_hub.services, "alice/slow")


def test_child_killed_mid_training(local_hub: LocalHub) -> None:
    job_id = submit(local_hub, finetune_spec("alice/killed", max_steps=LONG))
    thread = _in_thread(Worker(local_hub.services, fast_options()))
    wait_until_training(local_hub.services, job_id)
    (child,) = job_children(job_id)
    os.kill(child, signal.SIGKILL)
    job = wait_until_done(local_hub.services, job_id, 30)
    thread.join(10)
    assert job.state == "failed" and "killed by signal 9" in (job.error or "")
    assert not repo_exists(local_hub.services, "alice/killed")


def test_worker_process_killed_mid_training(local_hub: LocalHub) -> None:
    """SIGKILL the whole worker: its child exits by itself, recovery fails the job, no repo appears."""
    job_id = submit(local_hub, finetune_spec("alice/orphan", max_steps=LONG), max_attempts=1)
    settings = local_hub.services.settings
    env = {**os.environ, "COMMONS_HOME": str(settings.home), "COMMONS_DATABASE_URL": settings.sqlalchemy_url}
    code = "import typer; from commons.cli.jobs import worker; typer.run(worker)"
    proc = subprocess.Popen([sys.executable, "-c", code, "--heartbeat", "0.3", "--once"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_training(local_hub.services, job_id)
        (child,) = job_children(job_id)
        proc.kill()
        proc.wait()
        wait_for(lambda: not alive(child), 10, "the orphaned child to exit")
        assert job_row(local_hub.services, job_id).state == "running"  # nobody has noticed yet
        worker = Worker(local_hub.services, fast_options())
        wait_for(lambda: worker.recover(), 10, "recovery")
    finally:
        proc.kill()
    job = job_row(local_hub.services, job_id)
    assert job.state == "failed" and "stopped sending heartbeats" in (job.error or "")
    assert not repo_exists(local_hub.services, "alice/orphan")


def test_stopping_the_embedded_worker_requeues(local_hub: LocalHub) -> None:
    job_id = submit(local_hub, finetune_spec("alice/requeued", max_steps=LONG))
    embedded = EmbeddedWorker(local_hub.services, fast_options())
    embedded.start()
    wait_until_training(local_hub.services, job_id)
    (child,) = job_children(job_id)
    embedded.stop()
    job = job_row(local_hub.services, job_id)
    assert job.state == "queued" and job.attempts == 0 and job.worker is None
    assert not alive(child) and not repo_exists(local_hub.services, "alice/requeued")
    with local_hub.services.session() as session:
        Jobs(session, local_hub.services.storage).cancel(local_hub.alice, job_id)


def _stale_running_job(hub: LocalHub, output: str) -> int:
    from commons.jobs import queue

    job_id = submit(hub, finetune_spec(output))
    with hub.services.session() as session:
        claimed = queue.claim_next(session, "dead-worker")
        assert claimed is not None and claimed.id == job_id
    return job_id


def _age(hub: LocalHub, job_id: int) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from commons.jobs import queue

    with hub.services.session() as session:
        session.execute(update(Job).where(Job.id == job_id)
                        .values(heartbeat_at=queue.now() - timedelta(seconds=600)))


def test_recovery_removes_a_half_created_output_repo(local_hub: LocalHub) -> None:
    """The worker died between creating the output repo and committing to it: recovery deletes the repo."""
    job_id = _stale_running_job(local_hub, "alice/half")
    with local_hub.services.session() as session:
        Repos(session, local_hub.services.storage).create(local_hub.alice, RepoRef.parse(RepoType.MODEL, "alice/half"))
    (local_hub.services.settings.home / "jobs" / f"job-{job_id}-1").mkdir(parents=True)
    _age(local_hub, job_id)
    Worker(local_hub.services, fast_options()).recover()
    assert job_row(local_hub.services, job_id).state == "queued"
    assert not repo_exists(local_hub.services, "alice/half")
    assert not (local_hub.services.settings.home / "jobs" / f"job-{job_id}-1").exists()
    assert any("half-created" in str(e.data.get("message")) for e in events(local_hub.services, job_id))
    with local_hub.services.session() as session:
        Jobs(session, local_hub.services.storage).cancel(local_hub.alice, job_id)


def test_recovery_keeps_a_repo_the_job_did_not_create(local_hub: LocalHub) -> None:
    from commons.jobs.publish import discard_partial_output

    with local_hub.services.session() as session:
        Repos(session, local_hub.services.storage).create(local_hub.alice, RepoRef.parse(RepoType.MODEL, "alice/mine"))
    job_id = _stale_running_job(local_hub, "alice/mine-out")
    with local_hub.services.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.spec = {**job.spec, "output_repo": "alice/mine"}  # as if someone took the name meanwhile
        assert not discard_partial_output(session, local_hub.services.storage, job, job.started_at)
    assert repo_exists(local_hub.services, "alice/mine")
    with local_hub.services.session() as session:
        Jobs(session, local_hub.services.storage).cancel(local_hub.alice, job_id)
