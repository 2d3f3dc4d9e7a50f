"""Hostile input: odd paths and names get a clear 400, oversized bodies a 413; nothing is written."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.hubserver import HubServer, free_port, new_home


@pytest.fixture(scope="module")
def small() -> Iterator[HubServer]:
    srv = HubServer(new_home(), free_port(), extra_env={
        "COMMONS_MAX_REQUEST_SIZE": "4096", "COMMONS_MAX_FILE_SIZE": "100000", "COMMONS_MAX_COMMIT_SIZE": "400000"})
    srv.provision()
    srv.start()
    srv.api().create_repo("alice/target")
    yield srv
    srv.stop()


def _commit(srv: HubServer, path: str) -> httpx.Response:
    lines = [{"key": "header", "value": {"summary": "x"}},
             {"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(b"x").decode()}}]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.post(f"{srv.url}/api/models/alice/target/commit/main", content=body,
                      headers={"authorization": f"Bearer {srv.alice_token}", "content-type": "application/x-ndjson"})


@pytest.mark.parametrize("path", ["../escape", "/abs/path", "a/../../b", "back\\slash", "nul\u0000byte", ".git/config",
                                  "dir/.git/hooks/post-commit", "a//b", "trailing/", "x" * 1200, "ctrl\u0007char"])
def test_hostile_commit_paths_are_refused(small: HubServer, path: str) -> None:
    before = small.api().model_info("alice/target").sha
    r = _commit(small, path)
    assert r.status_code == 400, r.text
    assert "Invalid path" in r.json()["error"]
    assert small.api().model_info("alice/target").sha == before


@pytest.mark.parametrize("name", ["a..b", "-lead", "has space", "x" * 97, "a--b", "ends.git", "ünïcode"])
def test_repo_name_rules(small: HubServer, name: str) -> None:
    """The client checks names too; the server must not rely on that."""
    r = httpx.post(f"{small.url}/api/repos/create", json={"name": name, "organization": "alice"},
                   headers={"authorization": f"Bearer {small.alice_token}"})
    assert r.status_code == 400 and "Invalid repo name" in r.json()["error"]


def test_file_size_limit(small: HubServer) -> None:
    r = httpx.post(f"{small.url}/api/models/alice/target/commit/main", headers={
        "authorization": f"Bearer {small.alice_token}", "content-type": "application/x-ndjson"},
        content=json.dumps({"key": "header", "value": {"summary": "big"}}) + "\n" + json.dumps(
            {"key": "file", "value": {"path": "big.bin", "content": base64.b64encode(b"x" * 200_000).decode()}}) + "\n")
    assert r.status_code == 413
    assert "big.bin" not in small.api().list_repo_files("alice/target")


def test_commit_body_limit(small: HubServer) -> None:
    body = json.dumps({"key": "header", "value": {"summary": "big"}}) + "\n" + "".join(
        json.dumps({"key": "file", "value": {"path": f"f{i}.bin", "content": base64.b64encode(b"y" * 90_000).decode()}})
        + "\n" for i in range(5))
    r = httpx.post(f"{small.url}/api/models/alice/target/commit/main", content=body,
                   headers={"authorization": f"Bearer {small.alice_token}", "content-type": "application/x-ndjson"})
    assert r.status_code == 413


def test_json_request_limit(small: HubServer) -> None:
    r = httpx.post(f"{small.url}/api/validate-yaml", json={"content": "x" * 10_000})
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = httpx.post(f"{small.url}/api/validate-yaml", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
