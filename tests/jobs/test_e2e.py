"""The whole path on the live hub: upload with huggingface_hub, submit over the jobs API, watch it train
in a worker, then load base + adapter with peft through HF_ENDPOINT, and reproduce it bit for bit."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commons.app import create_app
from commons.config import Settings
from commons.jobs.worker import EmbeddedWorker
from commons.services import Services, build_services
from tests.hubserver import HubServer, new_home
from tests.jobs.conftest import fast_options
from tests.jobs.helpers import wait_for

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@dataclass
class Finished:
    services: Services
    job: dict[str, Any]
    snapshots: list[dict[str, Any]]
    events: list[dict[str, Any]]
    base: str
    dataset: str
    dataset_sha: str
    output: str


@pytest.fixture(scope="module")
def finished(hub: HubServer) -> Iterator[Finished]:
    """Upload, submit, watch, finish: one fine-tune shared by the tests below."""
    from tests.jobs.tiny import tiny_dataset, tiny_llama

    root = new_home("commons-e2e-")
    api = hub.api("alice")
    suffix = uuid.uuid4().hex[:8]
    base, dataset, output = f"alice/tiny-{suffix}", f"alice/data-{suffix}", f"alice/tuned-{suffix}"
    api.create_repo(base)
    base_sha = api.upload_folder(folder_path=tiny_llama(root / "m"), repo_id=base).oid
    api.create_repo(dataset, repo_type="dataset")
    data_sha = api.upload_folder(folder_path=tiny_dataset(root / "d"), repo_id=dataset, repo_type="dataset").oid

    services = build_services(Settings(home=hub.home, database_url=hub.database_url))
    worker = EmbeddedWorker(services, fast_options(work_root=root / "work"))
    worker.start()
    client = TestClient(create_app(services=services))
    auth = {"Authorization": f"Bearer {hub.alice_token}"}
    spec = {"base": {"repo_id": base, "revision": base_sha}, "dataset": {"repo_id": dataset, "revision": "main"},
            "output_repo": output,
            "recipe": {"prompt_format": "chat", "max_steps": 12, "learning_rate": 0.05, "batch_size": 8,
                       "max_seq_len": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                       "eval_split": "test", "num_threads": 1}}
    response = client.post("/api/commons/jobs", json={"kind": "finetune", "spec": spec}, headers=auth)
    assert response.status_code == 200, response.text
    job_id = response.json()["id"]
    # Watch it as a client would: the job's progress and the event stream, polled.
    snapshots: list[dict[str, Any]] = []
    collected: list[dict[str, Any]] = []
    after = 0

    def poll() -> bool:
        nonlocal after
        page = client.get(f"/api/commons/jobs/{job_id}/events", params={"after": after}, headers=auth).json()
        collected.extend(page["events"])
        after = page["next"]
        snapshots.append(page["job"])
        return page["job"]["state"] in ("succeeded", "failed", "cancelled")

    try:
        wait_for(poll, 180, "the fine-tune to end")
        job = client.get(f"/api/commons/jobs/{job_id}", headers=auth).json()
    finally:
        worker.stop()
    yield Finished(services, job, snapshots, collected, base, dataset, data_sha, output)
    services.close()
    shutil.rmtree(root, ignore_errors=True)


def test_job_succeeds_with_live_progress(finished: Finished) -> None:
    job = finished.job
    assert job["state"] == "succeeded", job["error"]
    assert job["spec"]["dataset"]["revision"] == finished.dataset_sha  # "main" was pinned at submission
    steps = [e["data"] for e in finished.events if e["kind"] == "progress"]
    assert [s["step"] for s in steps] == list(range(1, 13))
    assert all(s["total"] == 12 and s["tokens_per_s"] > 0 and s["eta_s"] >= 0 and s["loss"] > 0 for s in steps)
    states = [e["data"]["state"] for e in finished.events if e["kind"] == "state"]
    assert states == ["queued", "running", "succeeded"]
    assert any(snap["state"] == "running" and snap["progress"].get("phase") for snap in finished.snapshots)
    metrics = job["result"]["metrics"]
    assert metrics["train_loss_after"] < metrics["train_loss_before"]
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]


def test_adapter_loads_from_the_hub_with_peft(finished: Finished, hub: HubServer) -> None:
    """Through HF_ENDPOINT: the adapter changes the model's outputs, and lowers its loss on training rows."""
    from huggingface_hub import hf_hub_download
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from commons.ml.data import collate, encode
    from commons.ml.specs import LoraRecipe

    token = hub.alice_token
    tokenizer = AutoTokenizer.from_pretrained(finished.output, token=token)
    base = AutoModelForCausalLM.from_pretrained(finished.base, token=token).eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(finished.base, token=token),
                                        finished.output, token=token).eval()
    train_file = hf_hub_download(finished.dataset, "data/train.jsonl", repo_type="dataset",
                                 token=token)
    rows = [json.loads(line) for line in Path(train_file).read_text().splitlines()]
    batch = collate(encode(rows, tokenizer, LoraRecipe(prompt_format="chat", max_seq_len=32)), 1)
    with torch.no_grad():
        before, after = base(**batch), adapted(**batch)
    assert not torch.allclose(before.logits, after.logits)
    assert float(after.loss) < float(before.loss)


def test_model_card_and_provenance(finished: Finished, hub: HubServer) -> None:
    from huggingface_hub import ModelCard, hf_hub_download

    card = ModelCard.load(finished.output, token=hub.alice_token)
    assert card.data.base_model == finished.base and card.data.base_model_relation == "adapter"
    assert card.data.datasets == [finished.dataset] and card.data.license == "apache-2.0"
    provenance = json.loads(Path(hf_hub_download(finished.output, "provenance.json", token=hub.alice_token))
                            .read_text())
    assert provenance["spec"] == finished.job["spec"] and provenance["seed"] == 0
    assert provenance["libraries"]["torch"] == torch.__version__ and provenance["wall_time_s"] > 0
    assert set(provenance["outputs"]) >= {"adapter_config.json", "adapter_model.safetensors", "README.md", "loss.png"}


def test_reproduce_is_bit_identical(finished: Finished, hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`commons jobs reproduce REPO@REV` reruns the recorded recipe: same versions on CPU, same bytes."""
    from typer.testing import CliRunner

    from commons.cli.jobs import app

    settings = finished.services.settings
    monkeypatch.setenv("COMMONS_HOME", str(settings.home))
    monkeypatch.setenv("COMMONS_DATABASE_URL", settings.sqlalchemy_url)
    out = CliRunner().invoke(app, ["reproduce", f"{finished.output}@{finished.job['result']['commit']}", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output[out.output.index("{"):])
    assert report["verdict"] == "identical", report
    assert set(report["files"].values()) == {"identical"} and len(report["files"]) >= 6
