"""A hub data directory with a tiny chat model and a LoRA adapter, and `commons serve-model` processes on it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from commons.accounts.tokens import issue_token
from commons.accounts.users import get_user
from commons.hub.ids import RepoRef, RepoType
from commons.hub.publish import commit_directory
from commons.hub.repos import Repos
from commons.services import Services
from tests.hubserver import free_port, new_home
from tests.jobs.local import local_services, user_actor

# Words of the tiny tokenizer (tests/jobs/tiny.py) only, so the rendered prompt has no unknown tokens.
CHAT_TEMPLATE = ("{% for m in messages %}# {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}Response :{% endif %}")


def tiny_chat_model(folder: Path) -> Path:
    from transformers import AutoTokenizer

    from tests.jobs.tiny import tiny_llama

    tiny_llama(folder, seed=4)  # a seed whose greedy replies are long and varied
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return folder


def tiny_adapter(base_dir: Path, folder: Path, base_repo: str, base_commit: str) -> Path:
    """A LoRA adapter with random (non-zero) weights, saved the way Commons' fine-tune jobs save one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from commons.ml.lora import save_adapter

    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"],
                                      init_lora_weights=False))
    folder.mkdir(parents=True)
    save_adapter(model, folder, base_repo, base_commit)
    return folder


def publish(services: Services, owner: str, repo_id: str, folder: Path, private: bool) -> str:
    actor = user_actor(services, owner)
    ref = RepoRef.parse(RepoType.MODEL, repo_id)
    with services.session() as session:
        repos = Repos(session, services.storage)
        repo = repos.create(actor, ref, private=private)
        session.commit()
        return commit_directory(session, services.storage, repo, repos.git(repo), actor, folder, "upload").oid


@dataclass
class ServingHub:
    home: Path
    services: Services
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def serving_hub() -> Iterator[ServingHub]:
    pytest.importorskip("peft")
    root = new_home("commons-serving-")
    services = local_services(root / "home")
    hub = ServingHub(root / "home", services, root)
    for name in ("alice", "bob"):
        user_actor(services, name)
    with services.session() as session:
        alice, bob = get_user(session, "alice"), get_user(session, "bob")
        assert alice is not None and bob is not None
        hub.tokens = {"alice": issue_token(session, alice, "t", "read"), "bob": issue_token(session, bob, "t", "read"),
                      "alice-other-repo": issue_token(session, alice, "scoped", "fine-grained",
                                                      scopes=[{"resource": "model:alice/other", "actions": ["read"]}])}
    base = tiny_chat_model(root / "tiny")
    hub.commits["alice/tiny-chat"] = publish(services, "alice", "alice/tiny-chat", base, private=True)
    adapter = tiny_adapter(base, root / "adapter", "alice/tiny-chat", hub.commits["alice/tiny-chat"])
    hub.commits["alice/tiny-chat-lora"] = publish(services, "alice", "alice/tiny-chat-lora", adapter, private=True)
    yield hub
    services.close()
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class ModelServer:
    """`commons serve-model` in a child process on a loopback port."""

    home: Path
    spec: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> ModelServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
        env["COMMONS_HOME"] = str(self.home)
        env.update(self.env)
        log = (self.home / f"serve-model-{self.port}.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "commons", "serve-model", self.spec, "--port",
                                      str(self.port), *self.args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve-model exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"serve-model did not start in {timeout} s: {self.log()[-3000:]}")

    def log(self) -> str:
        return (self.home / f"serve-model-{self.port}.log").read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
