"""Fixtures of the web UI tests: a browser-like client for the live hub, and the hub's database."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hubserver import HubServer

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


class Web:
    """A browser without JavaScript: keeps cookies, reads the tokens forms carry, posts forms."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def csrf(self, path: str = "/settings/tokens") -> str:
        """The session's CSRF token, as a page of `path` carries it."""
        page = self.get(path)
        match = _CSRF.search(page.text)
        assert match, f"no CSRF field on {path} ({page.status_code})"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: str | None = "auto",
             **kwargs: Any) -> httpx.Response:
        """POST a form; `csrf="auto"` adds this session's token, None leaves it out."""
        fields = dict(data or {})
        if csrf == "auto":
            fields["csrf"] = self.csrf()
        elif csrf is not None:
            fields["csrf"] = csrf
        return self.http.post(path, data=fields, **kwargs)

    def form_token(self, path: str = "/login") -> str:
        match = _FORM_TOKEN.search(self.get(path).text)
        assert match, f"no form token on {path}"
        return match.group(1)

    def login(self, user: str, password: str = PASSWORD, next_url: str = "/") -> httpx.Response:
        token = self.form_token("/login")
        return self.http.post("/login", data={"username": user, "password": password, "form_token": token,
                                              "next": next_url})

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def hub_services(hub: HubServer) -> Iterator[Any]:
    """The live hub's database and storage, for setting up what the UI cannot (passwords, site settings)."""
    from commons.config import Settings
    from commons.services import build_services

    services = build_services(Settings(home=hub.home, database_url=hub.database_url))
    yield services
    services.close()


@pytest.fixture(scope="session")
def passwords(hub_services: Any) -> None:
    """alice and bob can sign in to the web UI with PASSWORD."""
    from commons.accounts.passwords import hash_password
    from commons.accounts.users import get_user

    with hub_services.session() as session:
        for name in ("alice", "bob", "root"):
            user = get_user(session, name)
            assert user is not None
            user.password_hash = hash_password(PASSWORD)


@pytest.fixture
def new_user(hub_services: Any) -> Callable[[], str]:
    """Make a fresh user with PASSWORD (for tests that change an account)."""
    from commons.accounts.passwords import hash_password
    from commons.accounts.users import create_user

    def make() -> str:
        name = f"u-{uuid.uuid4().hex[:10]}"
        with hub_services.session() as session:
            create_user(session, name).password_hash = hash_password(PASSWORD)
        return name

    return make


@pytest.fixture
def anon(hub: HubServer) -> Iterator[Web]:
    web = Web(hub.url)
    yield web
    web.close()


def _signed_in(hub: HubServer, name: str) -> Iterator[Web]:
    web = Web(hub.url)
    response = web.login(name)
    assert response.status_code == 303, response.text[-500:]
    yield web
    web.close()


@pytest.fixture
def alice(hub: HubServer, passwords: None) -> Iterator[Web]:
    yield from _signed_in(hub, "alice")


@pytest.fixture
def bob(hub: HubServer, passwords: None) -> Iterator[Web]:
    yield from _signed_in(hub, "bob")


@pytest.fixture
def signed_in_user(hub: HubServer, new_user: Callable[[], str]) -> Iterator[tuple[str, Web]]:
    """A fresh user, signed in (for tests that change the account)."""
    name = new_user()
    for web in _signed_in(hub, name):
        yield name, web


@pytest.fixture
def model(hub: HubServer, repo_name: str) -> str:
    """A public model of alice's with a card, a config and a script."""
    from huggingface_hub import CommitOperationAdd

    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id)
    api.create_commit(repo_id, [
        CommitOperationAdd("README.md", CARD.encode()),
        CommitOperationAdd("config.json", b'{"hidden_size": 576, "num_hidden_layers": 30}\n'),
        CommitOperationAdd("src/run.py", b"def main() -> int:\n    return 42\n"),
    ], commit_message="Add the model")
    return repo_id


def audit_actions(hub_services: Any, target_part: str) -> list[tuple[str, str | None]]:
    """(action, actor) of the audit events whose target contains `target_part`, oldest first."""
    from sqlalchemy import select

    from commons.db.models import AuditEvent

    with hub_services.session() as session:
        rows = session.execute(select(AuditEvent.action, AuditEvent.actor)
                               .where(AuditEvent.target.contains(target_part)).order_by(AuditEvent.id))
        return [(a, who) for a, who in rows]


CARD = """---
license: apache-2.0
base_model: demo/base-model
datasets: [demo/instructions]
language: [en, fr]
library_name: transformers
pipeline_tag: text-generation
parameters: 135000000
model-index:
- name: tiny
  results:
  - task: {type: text-generation}
    dataset: {name: HellaSwag, type: hellaswag}
    metrics: [{type: acc_norm, name: normalized accuracy, value: 42.13}]
---
# Tiny chat model

A **small** model. See [the config](config.json).

```python
print("hello")
```
"""


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- Chromium (Debian's, driven by Playwright)
CHROMIUM = os.environ.get("COMMONS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1360, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
