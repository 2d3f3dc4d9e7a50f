"""Shared fixtures. The client environment is fixed here, before any HF library is imported.

`COMMONS_CONFORMANCE=<policy>-<db>` picks the configuration the live-server tests run in:
policy `regular` (A: default client settings) or `lfs` (B: `HF_HUB_DISABLE_XET=1`), database
`sqlite` or `postgres`. `scripts/test` runs the conformance suite in all four.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubserver import HubServer, Postgres, free_port, new_home

CONFORMANCE = os.environ.get("COMMONS_CONFORMANCE", "regular-sqlite")
POLICY, DATABASE = CONFORMANCE.split("-")
assert POLICY in ("regular", "lfs") and DATABASE in ("sqlite", "postgres"), CONFORMANCE

HUB_PORT = free_port()
_HF_HOME = tempfile.mkdtemp(prefix="commons-test-hf-")
os.environ.update({
    "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DISABLE_SAFETENSORS_CONVERSION": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
})
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(var, None)
if POLICY == "lfs":
    os.environ["HF_HUB_DISABLE_XET"] = "1"
else:
    os.environ.pop("HF_HUB_DISABLE_XET", None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres(new_home("commons-pg-"))
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def hub(request: pytest.FixtureRequest) -> Iterator[HubServer]:
    """The live server of this run's configuration, on HF_ENDPOINT's port (page size 2)."""
    url = None
    if DATABASE == "postgres":
        url = request.getfixturevalue("postgres").create_database(f"hub_{uuid.uuid4().hex[:8]}")
    # Every test connects from 127.0.0.1: a generous limit keeps tests that send bad tokens independent.
    server = HubServer(new_home(), HUB_PORT, policy=POLICY, database_url=url, page_size=2,
                       extra_env={"COMMONS_AUTH_FAILURES_PER_MINUTE": "100000"})
    server.provision()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture
def repo_name() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh client cache for one test (huggingface_hub reads the cache path at call time)."""
    import huggingface_hub.constants as c

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    return cache
