"""Integrity: SIGKILL mid-upload and mid-commit leaves every repo readable at its previous commit;
concurrent commits never lose an update; parentCommit is a real compare-and-swap."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.hubserver import HubServer, free_port, new_home


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HubServer]:
    srv = HubServer(new_home(), free_port(), extra_env={"COMMONS_FAULT_MARKER": str(tmp_path / "marker")})
    srv.provision()
    srv.start()
    yield srv
    srv.stop()


def _restart(srv: HubServer, **env: str) -> None:
    srv.kill()
    srv.extra_env.update(env)
    for key in [k for k, v in srv.extra_env.items() if v == ""]:
        del srv.extra_env[key]
    srv.start()


def _state(srv: HubServer, repo: str) -> tuple[str, dict[str, bytes]]:
    api = srv.api()
    sha = api.model_info(repo).sha
    files = {}
    for f in api.list_repo_files(repo, revision=sha):
        r = httpx.get(f"{srv.url}/{repo}/resolve/{sha}/{f}", headers={"authorization": f"Bearer {srv.alice_token}"},
                      follow_redirects=True)
        assert r.status_code == 200, (f, r.status_code)
        files[f] = r.content
    return sha, files


def _seed(srv: HubServer, repo: str) -> tuple[str, dict[str, bytes]]:
    api = srv.api()
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id=repo)
    api.upload_file(path_or_fileobj=os.urandom(300_000), path_in_repo="w.safetensors", repo_id=repo)
    return _state(srv, repo)


def test_sigkill_while_commit_body_streams(server: HubServer) -> None:
    repo = "alice/stream-kill"
    before = _seed(server, repo)
    big = base64.b64encode(os.urandom(8_000_000)).decode()
    header = json.dumps({"key": "header", "value": {"summary": "half"}}) + "\n"
    line = json.dumps({"key": "file", "value": {"content": big, "path": "big.bin", "encoding": "base64"}}) + "\n"

    def body() -> Iterator[bytes]:
        yield header.encode()
        yield line[: len(line) // 2].encode()
        time.sleep(30)  # the server is killed while waiting for the rest
        yield line[len(line) // 2 :].encode()

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{server.url}/api/models/{repo}/commit/main", content=body(), timeout=60,
                       headers={"authorization": f"Bearer {server.alice_token}",
                                "content-type": "application/x-ndjson"})

    t = threading.Thread(target=send, daemon=True)
    t.start()
    time.sleep(1.5)
    _restart(server)
    assert _state(server, repo) == before
    server.api().upload_file(path_or_fileobj=b"after", path_in_repo="after.txt", repo_id=repo)
    assert "after.txt" in server.api().list_repo_files(repo)


@pytest.mark.parametrize("point", ["before-ref-move", "after-ref-move"])
def test_sigkill_inside_commit(server: HubServer, tmp_path: Path, point: str) -> None:
    """Killed with the new objects written: before the ref moves nothing changed; after, the new commit is whole."""
    repo = f"alice/kill-{point}"
    before = _seed(server, repo)
    _restart(server, COMMONS_FAULT_PAUSE=f"{point}:60")
    marker = tmp_path / "marker"
    new_weights = os.urandom(400_000)

    def commit() -> None:
        with contextlib.suppress(Exception):
            server.api().create_commit(repo, operations=[
                CommitOperationAdd("w.safetensors", new_weights), CommitOperationAdd("config.json", b'{"v": 2}'),
            ], commit_message="update")

    t = threading.Thread(target=commit, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the server never reached the pause point"
    _restart(server, COMMONS_FAULT_PAUSE="")
    sha, files = _state(server, repo)
    if point == "before-ref-move":
        assert (sha, files) == before
    else:
        assert sha != before[0]
        assert files["config.json"] == b'{"v": 2}' and files["w.safetensors"] == new_weights
    assert server.api().model_info(repo).sha == sha


def test_sigkill_during_lfs_upload(tmp_path: Path) -> None:
    """A PUT cut short stores nothing; the next batch asks for the object again."""
    srv = HubServer(new_home(), free_port(), policy="lfs")
    srv.provision()
    srv.start()
    try:
        repo = "alice/lfs-kill"
        srv.api().create_repo(repo)
        data = os.urandom(5_000_000)
        import hashlib

        oid = hashlib.sha256(data).hexdigest()
        auth = {"authorization": f"Bearer {srv.alice_token}"}
        batch = httpx.post(f"{srv.url}/{repo}.git/info/lfs/objects/batch", headers=auth, json={
            "operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}).json()
        href = batch["objects"][0]["actions"]["upload"]["href"]

        def partial() -> Iterator[bytes]:
            yield data[:1_000_000]
            time.sleep(30)
            yield data[1_000_000:]

        t = threading.Thread(target=lambda: _ignore(lambda: httpx.put(
            href, content=partial(), headers={"content-length": str(len(data))}, timeout=60)), daemon=True)
        t.start()
        time.sleep(1.5)
        _restart(srv)
        batch = httpx.post(f"{srv.url}/{repo}.git/info/lfs/objects/batch", headers=auth, json={
            "operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}).json()
        assert "actions" in batch["objects"][0]  # not stored: must be uploaded again
        assert not list((srv.home / "blobs").glob("sha256/*/*/" + oid))
    finally:
        srv.stop()


def _ignore(fn):  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        fn()


def test_concurrent_commits_lose_nothing(server: HubServer) -> None:
    repo = "alice/concurrent"
    server.api().create_repo(repo)
    errors: list[Exception] = []

    def writer(i: int) -> None:
        api = server.api()
        for j in range(5):
            try:
                api.upload_file(path_or_fileobj=f"{i}-{j}".encode(), path_in_repo=f"w{i}/f{j}.txt", repo_id=repo)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = set(server.api().list_repo_files(repo))
    assert {f"w{i}/f{j}.txt" for i in range(6) for j in range(5)} <= files
    assert len(server.api().list_repo_commits(repo)) == 31


def test_parent_commit_is_compare_and_swap(server: HubServer) -> None:
    repo = "alice/cas"
    api = server.api()
    api.create_repo(repo)
    head = api.model_info(repo).sha
    results: list[int] = []

    def attempt(i: int) -> None:
        try:
            api.create_commit(repo, operations=[CommitOperationAdd(f"f{i}", b"x")], commit_message=str(i),
                              parent_commit=head)
            results.append(200)
        except HfHubHTTPError as exc:
            results.append(exc.response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [412] * 5
