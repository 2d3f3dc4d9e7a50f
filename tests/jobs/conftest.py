"""Fixtures for job tests: an in-process hub (SQLite, no server) holding a tiny model and dataset."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from commons.accounts.actors import Actor
from commons.jobs.worker import WorkerOptions
from commons.services import Services
from tests.hubserver import new_home
from tests.jobs.local import local_services, upload, user_actor

# Short intervals, so heartbeats, flushes and recovery happen within a test's patience.
FAST = {"poll_s": 0.1, "heartbeat_s": 0.3, "flush_s": 0.2, "stale_after_s": 2.0, "recover_every_s": 0.5,
        "stop_grace_s": 2.0}


def fast_options(**overrides: object) -> WorkerOptions:
    return WorkerOptions(**{**FAST, **overrides})  # type: ignore[arg-type]


@dataclass
class LocalHub:
    services: Services
    alice: Actor
    bob: Actor
    base: str  # commit of alice/tiny
    dataset: str  # commit of alice/data
    bert: str  # commit of alice/bert


@pytest.fixture(scope="module")
def local_hub() -> Iterator[LocalHub]:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from tests.jobs.tiny import tiny_bert, tiny_dataset, tiny_llama

    root = new_home("commons-jobs-")
    services = local_services(root / "home")
    alice, bob = user_actor(services, "alice"), user_actor(services, "bob")
    base = upload(services, alice, "model", "alice/tiny", tiny_llama(root / "m"))
    dataset = upload(services, alice, "dataset", "alice/data", tiny_dataset(root / "d"))
    bert = upload(services, alice, "model", "alice/bert", tiny_bert(root / "b"))
    yield LocalHub(services, alice, bob, base, dataset, bert)
    services.close()
    shutil.rmtree(root, ignore_errors=True)


def finetune_spec(output: str | None, base: str = "alice/tiny", **recipe: object) -> dict[str, object]:
    """A spec for the tiny inputs: chat format, a high learning rate so 10 steps visibly lower the loss."""
    return {
        "base": {"repo_id": base},
        "dataset": {"repo_id": "alice/data"},
        "output_repo": output,
        "recipe": {"prompt_format": "chat", "max_steps": 10, "learning_rate": 0.05, "batch_size": 8,
                   "max_seq_len": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                   "eval_split": "test", "num_threads": 1, **recipe},
    }


@pytest.fixture
def tmp_home(tmp_path: Path) -> Path:
    return tmp_path / "home"
