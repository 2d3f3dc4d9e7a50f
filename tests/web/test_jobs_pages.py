"""Job pages on the live hub: a fine-tune submitted over HTTP runs in `commons serve`'s own worker, and
its page, the job list, the live fragment, cancel and the fine-tune form show and do what they should.

One real (tiny) fine-tune is shared by the module, run by the embedded worker of the `hub` server;
a second job is submitted through the form and cancelled while the first still holds the worker.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.hubserver import HubServer, new_home
from tests.web.conftest import Web, _signed_in

# The recipe of tests/jobs: chat format, a high learning rate so a few steps visibly lower the loss.
STEPS = 10
RECIPE = {"prompt_format": "chat", "max_steps": STEPS, "learning_rate": 0.05, "batch_size": 8, "max_seq_len": 32,
          "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "eval_split": "test", "num_threads": 1}
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Inputs:
    base: str
    base_sha: str
    dataset: str
    dataset_sha: str
    suffix: str


def upload_tiny_inputs(hub: HubServer, prefix: str) -> Inputs:
    """alice's tiny Llama and tiny instruction dataset (tests/jobs/tiny.py), under fresh names."""
    from tests.jobs.tiny import tiny_dataset, tiny_llama

    root = new_home(prefix)
    suffix = uuid.uuid4().hex[:8]
    base, dataset = f"alice/tiny-{suffix}", f"alice/data-{suffix}"
    api = hub.api("alice")
    api.create_repo(base)
    base_sha = api.upload_folder(folder_path=tiny_llama(root / "m"), repo_id=base).oid
    api.create_repo(dataset, repo_type="dataset")
    dataset_sha = api.upload_folder(folder_path=tiny_dataset(root / "d"), repo_id=dataset, repo_type="dataset").oid
    return Inputs(base, base_sha, dataset, dataset_sha, suffix)


def form_fields(inputs: Inputs, output_name: str, **changes: str) -> dict[str, str]:
    """What the fine-tune form sends, filled in for the tiny inputs."""
    fields = {"base_revision": inputs.base_sha, "dataset": inputs.dataset, "output_namespace": "alice",
              "output_name": output_name, "prompt_format": "chat", "max_steps": str(STEPS), "epochs": "1",
              "learning_rate": "0.05", "rank": "8", "alpha": "16", "batch_size": "8", "max_seq_len": "32",
              "instruction_column": "instruction", "response_column": "response", "text_column": "text",
              "eval_split": "test", "target_modules": "q_proj, k_proj, v_proj, o_proj"}
    return {**fields, **changes}


def api_job(hub: HubServer, job_id: int, user: str = "alice") -> dict[str, Any]:
    response = httpx.get(f"{hub.url}/api/commons/jobs/{job_id}", headers=auth(hub, user), timeout=30)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def auth(hub: HubServer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.tokens[user]}"}


def wait_until(hub: HubServer, job_id: int, states: tuple[str, ...], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api_job(hub, job_id)
        if job["state"] in states:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} is still {job['state']} after {timeout} s: {job}")


@dataclass
class Run:
    inputs: Inputs
    tuned: dict[str, Any]  # the fine-tune submitted over the API, finished
    cancelled: dict[str, Any]  # the one submitted through the form and cancelled
    queued_page: str  # the cancelled job's page while it waited for the worker
    submitted: httpx.Response  # the form's answer
    failed: dict[str, Any]  # one whose dataset was deleted before a worker took it


@pytest.fixture(scope="module")
def run(hub: HubServer, passwords: None) -> Iterator[Run]:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    inputs = upload_tiny_inputs(hub, "commons-web-jobs-")
    spec = {"base": {"repo_id": inputs.base, "revision": inputs.base_sha},
            "dataset": {"repo_id": inputs.dataset}, "output_repo": f"alice/tuned-{inputs.suffix}", "recipe": RECIPE}
    response = httpx.post(f"{hub.url}/api/commons/jobs", json={"kind": "finetune", "spec": spec},
                          headers=auth(hub, "alice"), timeout=30)
    assert response.status_code == 200, response.text
    tuned_id = response.json()["id"]
    # While that job holds the server's single worker, a second one waits in the queue: submit it
    # through the form, look at its page, cancel it.
    for web in _signed_in(hub, "alice"):
        submitted = web.post(f"/{inputs.base}/finetune", form_fields(inputs, f"cancelled-{inputs.suffix}"))
        assert submitted.status_code == 303, submitted.text[-2000:]
        job_id = int(submitted.headers["location"].rsplit("/", 1)[1])
        queued_page = web.get(f"/jobs/{job_id}").text
        assert web.post(f"/jobs/{job_id}/cancel").status_code == 303
    # A third one fails: its dataset is gone by the time the worker gets to it.
    doomed = f"alice/doomed-{inputs.suffix}"
    api = hub.api("alice")
    api.create_repo(doomed, repo_type="dataset")
    api.upload_file(path_or_fileobj=b'{"instruction": "a", "response": "b"}\n', path_in_repo="train.jsonl",
                    repo_id=doomed, repo_type="dataset")
    response = httpx.post(f"{hub.url}/api/commons/jobs", headers=auth(hub, "alice"), timeout=30, json={
        "kind": "finetune", "spec": {**spec, "dataset": {"repo_id": doomed}, "output_repo": f"{doomed}-out"}})
    assert response.status_code == 200, response.text
    api.delete_repo(doomed, repo_type="dataset")
    cancelled = wait_until(hub, job_id, TERMINAL, 60)
    tuned = wait_until(hub, tuned_id, TERMINAL)
    failed = wait_until(hub, response.json()["id"], TERMINAL, 60)
    yield Run(inputs, tuned, cancelled, queued_page, submitted, failed)


def test_a_job_submitted_over_http_runs_in_the_servers_own_worker(hub: HubServer, run: Run) -> None:
    job = run.tuned
    assert job["state"] == "succeeded", job["error"]
    assert hub.proc is not None and job["worker"].split(":")[1] == str(hub.proc.pid)  # `commons serve` ran it
    assert job["spec"]["dataset"]["revision"] == run.inputs.dataset_sha  # pinned when queued
    files = set(hub.api("alice").list_repo_files(job["result"]["output_repo"]))
    assert {"adapter_config.json", "adapter_model.safetensors", "provenance.json", "README.md"} <= files


def test_job_page_shows_progress_loss_curve_and_output(run: Run, alice: Web) -> None:
    job, inputs = run.tuned, run.inputs
    page = alice.get(f"/jobs/{job['id']}")
    assert page.status_code == 200
    html = page.text
    assert 'class="job-state state-succeeded"' in html
    assert f"LoRA fine-tune of {inputs.base} on {inputs.dataset}" in html
    assert f'<progress max="{STEPS}" value="{STEPS}"' in html
    # Inputs link to the commits they were pinned to; the output to the published repo and commit.
    assert f'href="/{inputs.base}/commit/{inputs.base_sha}"' in html
    assert f'href="/datasets/{inputs.dataset}/commit/{inputs.dataset_sha}"' in html
    output, commit = job["result"]["output_repo"], job["result"]["commit"]
    assert f'Published <a href="/{output}"' in html and f'href="/{output}/commit/{commit}"' in html
    # The loss curve: one point per step, and the whole-split losses before and after as dots.
    chart = re.search(r'<svg class="chart line-chart".*?</svg>', html, re.S)
    assert chart, "no loss chart"
    line = re.search(r'class="series-line series-0" d="([^"]+)"', chart.group(0))
    assert line and len(re.findall(r"[ML]", line.group(1))) == STEPS
    assert chart.group(0).count("<circle") >= 4  # train and eval loss, before and after (plus legend marks)
    assert "train_loss_after" in html and "eval_loss_after" in html  # final metrics
    assert "published " + output in html  # the log
    assert "hx-trigger" not in html and "Cancel job" not in html  # finished: no polling, nothing to cancel
    assert '<meta http-equiv="refresh"' not in html


def test_a_failed_job_shows_its_error(run: Run, alice: Web) -> None:
    job = run.failed
    assert job["state"] == "failed" and "not found" in job["error"].lower()
    html = alice.get(f"/jobs/{job['id']}").text
    assert 'class="job-state state-failed"' in html and "The job failed." in html
    assert '<pre class="job-error">' + job["error"].split("\n")[0] in html
    assert "not published" in html and "Published" not in html
    failed = alice.get("/jobs?state=failed").text
    assert f'href="/jobs/{job["id"]}"' in failed and f'href="/jobs/{run.tuned["id"]}"' not in failed


def test_job_page_is_for_its_owner_and_admins(hub: HubServer, run: Run, bob: Web, anon: Web) -> None:
    job_id = run.tuned["id"]
    assert bob.get(f"/jobs/{job_id}").status_code == 404
    assert bob.get(f"/jobs/{job_id}/live").status_code == 404
    assert bob.post(f"/jobs/{job_id}/cancel").status_code == 404
    signed_out = anon.get(f"/jobs/{job_id}")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == f"/login?next=%2Fjobs%2F{job_id}"
    assert anon.get("/jobs").status_code == 303
    assert anon.get(f"/jobs/{job_id}/live").status_code == 286  # signed out while watching: htmx stops polling
    for root in _signed_in(hub, "root"):
        assert root.get(f"/jobs/{job_id}").status_code == 200
        everyone = root.get("/jobs?all=1").text
        assert f'href="/jobs/{job_id}"' in everyone and 'href="/alice"' in everyone
        assert f'href="/jobs/{job_id}"' not in root.get("/jobs").text  # "mine" by default


def test_job_list_filters_by_state(run: Run, alice: Web, bob: Web) -> None:
    tuned, cancelled = f'href="/jobs/{run.tuned["id"]}"', f'href="/jobs/{run.cancelled["id"]}"'
    mine = alice.get("/jobs").text
    assert tuned in mine and cancelled in mine
    succeeded = alice.get("/jobs?state=succeeded").text
    assert tuned in succeeded and cancelled not in succeeded
    only_cancelled = alice.get("/jobs?state=cancelled").text
    assert cancelled in only_cancelled and tuned not in only_cancelled
    assert alice.get("/jobs?state=bogus").status_code == 400
    for page in (bob.get("/jobs").text, bob.get("/jobs?all=1").text):  # `all` is for administrators
        assert tuned not in page


def test_live_fragment_sends_the_status_and_only_new_log_lines(run: Run, alice: Web) -> None:
    job_id = run.tuned["id"]
    first = alice.get(f"/jobs/{job_id}/live?after=0")
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.text.lstrip().startswith('<section id="job-live"') and "hx-trigger" not in first.text
    assert 'hx-swap-oob="beforeend:#job-log"' in first.text and "state succeeded" in first.text
    assert re.search(r'<section id="job-details"[^>]*hx-swap-oob="true"', first.text)  # the facts beside it
    last = max(int(n) for n in re.findall(r'id="log-(\d+)"', first.text))
    nothing_new = alice.get(f"/jobs/{job_id}/live?after={last}").text
    assert "beforeend:#job-log" not in nothing_new and 'id="job-live"' in nothing_new
    # Stderr lines and every step only on request.
    assert "log-progress" not in first.text
    assert "log-progress" in alice.get(f"/jobs/{job_id}/live?after=0&log=all").text


def test_a_waiting_job_polls_and_can_be_cancelled(hub: HubServer, run: Run, alice: Web) -> None:
    queued = run.queued_page
    assert 'class="job-state state-queued"' in queued and "Waiting for a worker" in queued
    assert f'hx-get="/jobs/{run.cancelled["id"]}/live?after=' in queued and 'hx-trigger="every 2s"' in queued
    assert "Cancel job" in queued and '<noscript><meta http-equiv="refresh"' in queued
    assert '<svg class="chart' not in queued  # no empty chart frame before the first loss
    assert run.cancelled["state"] == "cancelled" and run.cancelled["result"] is None
    page = alice.get(f"/jobs/{run.cancelled['id']}").text
    assert "Nothing was published" in page and "Cancel job" not in page
    assert not hub.api("alice").repo_exists(run.cancelled["spec"]["output_repo"])
    again = alice.post(f"/jobs/{run.cancelled['id']}/cancel")
    assert again.status_code == 409 and "cannot become cancelled" in again.text
    assert alice.post(f"/jobs/{run.tuned['id']}/cancel", csrf=None).status_code == 403


def test_finetune_form_keeps_values_and_shows_errors(hub: HubServer, run: Run, alice: Web, bob: Web,
                                                     anon: Web) -> None:
    inputs = run.inputs
    form = alice.get(f"/{inputs.base}/finetune")
    assert form.status_code == 200
    assert f'name="base_revision" value="{inputs.base_sha}"' in form.text
    assert f'<option value="{inputs.dataset}">' in form.text  # datasets to pick from
    assert f'name="output_name" value="tiny-{inputs.suffix}-lora"' in form.text
    before = len(httpx.get(f"{hub.url}/api/commons/jobs", headers=auth(hub, "alice")).json())

    bad_number = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora", rank="eight", epochs="1.5"))
    assert bad_number.status_code == 400
    assert 'id="err-rank">Enter a whole number' in bad_number.text
    assert 'name="rank" type="number" value="eight"' in bad_number.text  # kept as typed
    assert f'name="dataset" type="text" value="{inputs.dataset}"' in bad_number.text
    out_of_range = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora", rank="0"))
    assert out_of_range.status_code == 400 and 'id="err-rank">rank must be at least 1' in out_of_range.text
    no_modules = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora", target_modules=" , "))
    assert 'id="err-target_modules">target_modules must name at least one module' in no_modules.text
    missing = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora", dataset="alice/no-such-data"))
    assert missing.status_code == 404 and 'id="err-dataset">Repository not found: alice/no-such-data' in missing.text
    taken = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, f"tiny-{inputs.suffix}"))
    assert taken.status_code == 409 and "already exists" in taken.text
    elsewhere = alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora", output_namespace="bob"))
    assert elsewhere.status_code == 403 and 'id="err-output_namespace"' in elsewhere.text
    assert alice.post(f"/{inputs.base}/finetune", form_fields(inputs, "x-lora"), csrf=None).status_code == 403
    after = len(httpx.get(f"{hub.url}/api/commons/jobs", headers=auth(hub, "alice")).json())
    assert after == before  # nothing was queued

    # Any signed-in reader may fine-tune a public model into their own namespace; datasets cannot be.
    theirs = bob.get(f"/{inputs.base}/finetune")
    assert theirs.status_code == 200 and '<option value="bob" selected>' in theirs.text
    assert alice.get(f"/datasets/{inputs.dataset}/finetune").status_code == 404
    signed_out = anon.get(f"/{inputs.base}/finetune")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login?next=")


def test_fine_tune_panel_and_jobs_link_for_signed_in_users(run: Run, alice: Web, anon: Web) -> None:
    inputs = run.inputs
    card = alice.get(f"/{inputs.base}").text
    assert f'href="/{inputs.base}/finetune"' in card and 'href="/jobs"' in card
    public = anon.get(f"/{inputs.base}").text
    assert "/finetune" not in public and 'href="/jobs"' not in public
    assert "/finetune" not in alice.get(f"/datasets/{inputs.dataset}").text
    assert run.submitted.headers["location"].startswith("/jobs/")

