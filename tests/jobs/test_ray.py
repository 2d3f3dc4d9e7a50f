"""The Ray backend against a real local cluster: `ray start --head` on loopback, started by the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from commons.jobs.service import Jobs
from commons.jobs.worker import Worker
from tests.hubserver import free_port
from tests.jobs.conftest import LocalHub, fast_options, finetune_spec
from tests.jobs.helpers import job_children, job_row, repo_exists, wait_until_done, wait_until_training

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    ray_bin = Path(sys.executable).with_name("ray")
    # Unix socket paths must stay short: a temp dir directly under /tmp.
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                   check=True, env=env, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # `ray stop` ends this machine's Ray processes: the ones this fixture started.
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)


def test_finetune_runs_as_a_ray_task(local_hub: LocalHub, ray_address: str) -> None:
    with local_hub.services.session() as session:
        job_id = Jobs(session, local_hub.services.storage).submit(local_hub.alice, "finetune",
                                                                 finetune_spec("alice/on-ray")).id
    Worker(local_hub.services, fast_options(backend="ray", ray_address=ray_address)).run_once()
    job = job_row(local_hub.services, job_id)
    assert job.state == "succeeded", job.error
    assert job.result["metrics"]["train_loss_after"] < job.result["metrics"]["train_loss_before"]
    assert job.progress["step"] == 10 and repo_exists(local_hub.services, "alice/on-ray")
    # The job process ran under the Ray worker, not under us.
    assert ray.is_initialized()


def test_cancel_stops_the_ray_task(local_hub: LocalHub, ray_address: str) -> None:
    import threading

    with local_hub.services.session() as session:
        jobs = Jobs(session, local_hub.services.storage)
        job_id = jobs.submit(local_hub.alice, "finetune", finetune_spec("alice/ray-cancel", max_steps=10**6)).id
    worker = Worker(local_hub.services, fast_options(backend="ray", ray_address=ray_address))
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()
    wait_until_training(local_hub.services, job_id)
    assert job_children(job_id)
    with local_hub.services.session() as session:
        Jobs(session, local_hub.services.storage).cancel(local_hub.alice, job_id)
    job = wait_until_done(local_hub.services, job_id, 60)
    thread.join(30)
    assert job.state == "cancelled" and not repo_exists(local_hub.services, "alice/ray-cancel")
    from tests.jobs.helpers import wait_for

    wait_for(lambda: not job_children(job_id), 15, "the job process under Ray to exit")
