"""Git smart HTTP with the real git and git-lfs, live server: clone, fetch, LFS pull, access, no push.

Every git runs with a fresh HOME and global config, no system config and no terminal prompt, so
nothing from the machine's user leaks in and a missing credential fails instead of hanging.
"""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, snapshot_download

from tests.hubserver import HubServer


def _has_git_lfs() -> bool:
    if shutil.which("git") is None:
        return False
    return subprocess.run(["git", "lfs", "version"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _has_git_lfs(), reason="needs git and git-lfs")

Completed = subprocess.CompletedProcess[str]
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"
SUFFIXES = pytest.mark.parametrize("suffix", ["", ".git"], ids=["plain-url", "dot-git-url"])


@dataclass
class Git:
    """`git` in an isolated environment (own HOME and global config)."""

    env: dict[str, str]

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True) -> Completed:
        result = subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                                timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def head(self, repo: Path, rev: str = "HEAD") -> str:
        return self("rev-parse", rev, cwd=repo).stdout.strip()


@pytest.fixture
def git(tmp_path: Path) -> Git:
    home = tmp_path / "home"
    home.mkdir()
    drop = ("http_proxy", "https_proxy", "all_proxy", "ssh_askpass")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k.lower() not in drop}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_LFS_SKIP_SMUDGE": "1",  # clone fetches pointers; `git lfs pull` fetches the bytes
        "NO_PROXY": "127.0.0.1,localhost",
    })
    run = Git(env)
    run("lfs", "install", "--skip-repo")
    run("config", "--global", "user.name", "Tester")
    run("config", "--global", "user.email", "tester@example.com")
    return run


def clone_url(hub: HubServer, repo_id: str, repo_type: str = "model", suffix: str = "",
              user: str | None = None, token: str | None = None) -> str:
    host = hub.url.removeprefix("http://")
    creds = f"{user}:{token}@" if token else ""
    prefix = "datasets/" if repo_type == "dataset" else ""
    return f"http://{creds}{host}/{prefix}{repo_id}{suffix}"


def credential_store(tmp: Path, hub: HubServer, user: str, token: str) -> tuple[str, str]:
    """`git -c` arguments for a credential helper holding `user:token` for the hub's host."""
    store = tmp / "credentials"
    store.write_text(f"http://{user}:{token}@{hub.url.removeprefix('http://')}\n")
    return "-c", f"credential.helper=store --file={store}"


def basic(token: str, user: str = "git") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def make_repo(hub: HubServer, repo_id: str, repo_type: str = "model",
              private: bool = False) -> tuple[str, bytes]:
    """A repo with a README, a nested text file and a 2 MB LFS file; returns (head sha, LFS bytes)."""
    api = hub.api("alice")
    api.create_repo(repo_id, repo_type=repo_type, private=private)
    weights = os.urandom(2 * 1024 * 1024)
    info = api.create_commit(repo_id, repo_type=repo_type, commit_message="files", operations=[
        CommitOperationAdd("README.md", b"# hello\n"),
        CommitOperationAdd("src/deep/notes.txt", b"nested text\n"),
        CommitOperationAdd("weights.safetensors", weights),
    ])
    return info.oid, weights


def assert_matches_snapshot(git: Git, clone: Path, hub: HubServer, repo_id: str, sha: str, tmp: Path,
                            repo_type: str = "model", token: str | None = None) -> None:
    """Every tracked file of the clone has the bytes `snapshot_download` gives for the same commit."""
    assert git.head(clone) == sha
    snap = Path(snapshot_download(repo_id, repo_type=repo_type, revision=sha, endpoint=hub.url,
                                  token=token or False, cache_dir=tmp / f"hf-{sha[:8]}"))
    tracked = sorted(git("ls-files", cwd=clone).stdout.split())
    downloaded = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file())
    assert tracked == downloaded
    for path in tracked:
        assert (clone / path).read_bytes() == (snap / path).read_bytes(), path


# ---------------------------------------------------------------- clone + LFS (1, 2)
@SUFFIXES
def test_clone_model_and_lfs_pull(hub: HubServer, git: Git, repo_name: str, tmp_path: Path,
                                  suffix: str) -> None:
    repo_id = f"alice/{repo_name}"
    sha, weights = make_repo(hub, repo_id)
    clone = tmp_path / "clone"
    git("clone", clone_url(hub, repo_id, suffix=suffix), str(clone))
    assert git.head(clone) == sha == hub.api("alice").repo_info(repo_id).sha
    # Only the pointer came with git; its bytes come from the LFS batch API (`<url>.git/info/lfs`).
    assert (clone / "weights.safetensors").read_bytes().startswith(LFS_POINTER)
    git("lfs", "pull", cwd=clone)
    assert (clone / "weights.safetensors").read_bytes() == weights
    assert_matches_snapshot(git, clone, hub, repo_id, sha, tmp_path)


@SUFFIXES
def test_clone_dataset(hub: HubServer, git: Git, repo_name: str, tmp_path: Path, suffix: str) -> None:
    repo_id = f"alice/{repo_name}"
    sha, _ = make_repo(hub, repo_id, repo_type="dataset")
    clone = tmp_path / "clone"
    git("clone", clone_url(hub, repo_id, "dataset", suffix), str(clone))
    git("lfs", "pull", cwd=clone)
    assert_matches_snapshot(git, clone, hub, repo_id, sha, tmp_path, repo_type="dataset")
    # The same name as a model repo does not exist: the two URL spaces stay apart.
    missing = git("clone", clone_url(hub, repo_id, suffix=suffix), str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0


# ---------------------------------------------------------------- private repos (3)
def test_private_repo_clone_needs_credentials(hub: HubServer, git: Git, repo_name: str,
                                              tmp_path: Path) -> None:
    repo_id = f"alice/{repo_name}"
    sha, _ = make_repo(hub, repo_id, private=True)

    anonymous = git("clone", clone_url(hub, repo_id), str(tmp_path / "anon"), check=False)
    assert anonymous.returncode != 0
    assert not (tmp_path / "anon").exists()  # git removes a failed clone: nothing was fetched
    assert "could not read Username" in anonymous.stderr  # git was challenged for credentials

    as_bob = git("clone", clone_url(hub, repo_id, user="bob", token=hub.bob_token), str(tmp_path / "bob"),
                 check=False)
    assert as_bob.returncode != 0 and "not found" in as_bob.stderr
    assert not (tmp_path / "bob").exists()

    bad = git("clone", clone_url(hub, repo_id, user="alice", token="cm_not-a-token"), str(tmp_path / "bad"),
              check=False)
    assert bad.returncode != 0 and "Authentication failed" in bad.stderr

    with_url_creds = tmp_path / "alice"
    git("clone", clone_url(hub, repo_id, user="alice", token=hub.alice_token), str(with_url_creds))
    assert git.head(with_url_creds) == sha

    # The usual set-up: a credential helper answers git's challenge (username is free-form).
    helper = credential_store(tmp_path, hub, "anything", hub.alice_token)
    with_helper = tmp_path / "helper"
    git(*helper, "clone", clone_url(hub, repo_id), str(with_helper))
    assert git.head(with_helper) == sha


@SUFFIXES
def test_private_repo_lfs_pull_with_credentials(hub: HubServer, git: Git, repo_name: str, tmp_path: Path,
                                                suffix: str) -> None:
    repo_id = f"alice/{repo_name}"
    sha, weights = make_repo(hub, repo_id, private=True)
    with_url_creds = tmp_path / "url"
    url = clone_url(hub, repo_id, suffix=suffix, user="alice", token=hub.alice_token)
    git("clone", url, str(with_url_creds))
    git("lfs", "pull", cwd=with_url_creds)
    assert (with_url_creds / "weights.safetensors").read_bytes() == weights

    helper = credential_store(tmp_path, hub, "alice", hub.alice_token)
    with_helper = tmp_path / "helper"
    git(*helper, "clone", clone_url(hub, repo_id, suffix=suffix), str(with_helper))
    git(*helper, "lfs", "pull", cwd=with_helper)
    assert_matches_snapshot(git, with_helper, hub, repo_id, sha, tmp_path, token=hub.alice_token)


@pytest.mark.parametrize("visibility", ["public", "private", "gated"])
def test_git_access_is_resolve_access(hub: HubServer, repo_name: str, visibility: str) -> None:
    """For every caller, info/refs and upload-pack answer with the status (and error code) of a download."""
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id, private=visibility == "private")
    api.upload_file(path_or_fileobj=b"hi\n", path_in_repo="README.md", repo_id=repo_id)
    if visibility == "gated":
        api.update_repo_settings(repo_id, gated="auto")
    callers: dict[str, str | None] = {"anonymous": None, "owner": hub.alice_token, "other": hub.bob_token}
    if visibility == "private":  # once: failed token checks are rate-limited per client address
        callers["invalid"] = "cm_not-a-token"
    for caller, token in callers.items():
        bearer = {"Authorization": f"Bearer {token}"} if token else {}
        resolve = httpx.get(f"{hub.url}/{repo_id}/resolve/main/README.md", headers=bearer)
        for headers in ([bearer, basic(token)] if token else [{}]):
            refs = httpx.get(f"{hub.url}/{repo_id}/info/refs", params={"service": "git-upload-pack"},
                             headers=headers)
            assert refs.status_code == resolve.status_code, (caller, headers)
            assert refs.headers.get("x-error-code") == resolve.headers.get("x-error-code"), caller
            if refs.status_code == 401:
                assert refs.headers["www-authenticate"].startswith("Basic ")
            pack = httpx.post(f"{hub.url}/{repo_id}.git/git-upload-pack", content=b"0000", headers={
                **headers, "Content-Type": "application/x-git-upload-pack-request"})
            assert pack.status_code == resolve.status_code, (caller, headers)
    expected = {"public": 200, "private": 404, "gated": 403}[visibility]
    other = httpx.get(f"{hub.url}/{repo_id}/info/refs?service=git-upload-pack", headers=basic(hub.bob_token))
    assert other.status_code == expected


# ---------------------------------------------------------------- no pushing (4)
def test_push_is_refused(hub: HubServer, git: Git, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"alice/{repo_name}"
    sha, _ = make_repo(hub, repo_id)
    clone = tmp_path / "clone"
    git("clone", clone_url(hub, repo_id, user="alice", token=hub.alice_token), str(clone))
    (clone / "README.md").write_text("changed\n")
    git("commit", "-am", "change", cwd=clone)
    pushed = git("push", "origin", "main", cwd=clone, check=False)
    assert pushed.returncode != 0
    assert "read-only over git" in pushed.stderr  # git shows a text/plain error body as `remote: ...`
    assert hub.api("alice").repo_info(repo_id).sha == sha
    direct = httpx.post(f"{hub.url}/{repo_id}/git-receive-pack", headers=basic(hub.alice_token),
                        content=b"0000")
    assert direct.status_code == 403


# ---------------------------------------------------------------- tags and PR refs (5)
@pytest.mark.parametrize("protocol", ["0", "2"])
def test_clone_tag_and_fetch_pr_ref(hub: HubServer, git: Git, repo_name: str, tmp_path: Path,
                                    protocol: str) -> None:
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    tagged, _ = make_repo(hub, repo_id)
    api.create_tag(repo_id, tag="v1.0", revision=tagged)
    head = api.upload_file(path_or_fileobj=b"v2\n", path_in_repo="README.md", repo_id=repo_id).oid
    pr = api.upload_file(path_or_fileobj=b"proposal\n", path_in_repo="PROPOSAL.md", repo_id=repo_id,
                         create_pr=True)
    assert pr.pr_num == 1
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    pr_head = next(r.target_commit for r in refs.pull_requests or [] if r.ref == "refs/pr/1")

    v = ("-c", f"protocol.version={protocol}")
    at_tag = tmp_path / "tag"
    git(*v, "clone", "--branch", "v1.0", clone_url(hub, repo_id), str(at_tag))
    assert git.head(at_tag) == tagged
    assert (at_tag / "README.md").read_bytes() == b"# hello\n"

    clone = tmp_path / "main"
    git(*v, "clone", clone_url(hub, repo_id), str(clone))
    assert git.head(clone) == head
    remote = git(*v, "ls-remote", "origin", cwd=clone).stdout
    listed = {ref: oid for oid, ref in (line.split("\t") for line in remote.splitlines())}
    assert listed["refs/pr/1"] == pr_head
    assert listed.get("refs/tags/v1.0^{}", listed["refs/tags/v1.0"]) == tagged  # peeled, if annotated
    git(*v, "fetch", "origin", "refs/pr/1", cwd=clone)
    assert git.head(clone, "FETCH_HEAD") == pr_head
    git("checkout", "-q", "FETCH_HEAD", cwd=clone)
    assert (clone / "PROPOSAL.md").read_bytes() == b"proposal\n"


# ---------------------------------------------------------------- the wire protocol itself
def pkt(line: str) -> bytes:
    data = line.encode()
    return f"{len(data) + 4:04x}".encode() + data


def test_protocol_details(hub: HubServer, repo_name: str) -> None:
    """v0 advertisement framing, v2 via `Git-Protocol`, gzip request bodies, dumb HTTP refused."""
    repo_id = f"alice/{repo_name}"
    hub.api("alice").create_repo(repo_id)
    sha = hub.api("alice").repo_info(repo_id).sha
    assert sha is not None
    url = f"{hub.url}/{repo_id}"

    v0 = httpx.get(f"{url}/info/refs", params={"service": "git-upload-pack"})
    assert v0.status_code == 200
    assert v0.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert v0.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert f"{sha} refs/heads/main".encode() in v0.content
    assert "no-cache" in v0.headers["cache-control"]

    v2 = httpx.get(f"{url}.git/info/refs", params={"service": "git-upload-pack"},
                   headers={"Git-Protocol": "version=2"})
    assert v2.content.startswith(pkt("version 2\n"))

    # A v2 `ls-refs` command: command line, delimiter, arguments, flush.
    ls_refs = b"".join([pkt("command=ls-refs\n"), b"0001", pkt("symrefs\n"), pkt("ref-prefix refs/heads/\n"),
                        b"0000"])
    headers: dict[str, Any] = {"Content-Type": "application/x-git-upload-pack-request",
                               "Git-Protocol": "version=2"}
    plain = httpx.post(f"{url}/git-upload-pack", content=ls_refs, headers=headers)
    zipped = httpx.post(f"{url}/git-upload-pack", content=gzip.compress(ls_refs),
                        headers={**headers, "Content-Encoding": "gzip"})
    for response in (plain, zipped):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-git-upload-pack-result"
        assert f"{sha} refs/heads/main".encode() in response.content

    corrupt = httpx.post(f"{url}/git-upload-pack", content=b"not gzip at all",
                         headers={**headers, "Content-Encoding": "gzip"})
    assert corrupt.status_code == 400
    wrong_type = httpx.post(f"{url}/git-upload-pack", content=ls_refs, headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    dumb = httpx.get(f"{url}/info/refs")
    assert dumb.status_code == 403
