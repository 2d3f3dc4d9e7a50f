"""hf-hub-protocol.md §8: every acceptance check, with the real huggingface_hub client, live server.

Runs in the configuration named by COMMONS_CONFORMANCE (see tests/conftest.py): policy A
(`regular`, default client settings, hf_xet installed) or policy B (`lfs`, HF_HUB_DISABLE_XET=1),
on SQLite or PostgreSQL.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfFileSystem,
    hf_hub_download,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import _CACHED_NO_EXIST

from tests.conftest import POLICY
from tests.hubserver import HubServer

HEX = set("0123456789abcdef")


def is_sha(value: str | None) -> bool:
    return value is not None and len(value) == 40 and set(value) <= HEX


@pytest.fixture
def repo(hub: HubServer, repo_name: str) -> str:
    repo_id = f"alice/{repo_name}"
    hub.api().create_repo(repo_id)
    return repo_id


# ---------------------------------------------------------------- auth and repos (1-5)
def test_1_whoami(hub: HubServer) -> None:
    assert hub.api().whoami()["name"] == "alice"
    with pytest.raises(HfHubHTTPError) as err:
        hub.api().whoami(token="bad")
    assert err.value.response.status_code == 401


def test_2_create_repo(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    url = api.create_repo(f"alice/{repo_name}")
    assert url.repo_id == f"alice/{repo_name}"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(f"alice/{repo_name}")
    assert err.value.response.status_code == 409
    assert api.create_repo(f"alice/{repo_name}", exist_ok=True).repo_id == f"alice/{repo_name}"
    ds = api.create_repo(f"d-{repo_name}", repo_type="dataset", private=True)
    assert ds.repo_id == f"alice/d-{repo_name}" and ds.repo_type == "dataset"
    assert api.dataset_info(f"alice/d-{repo_name}").private is True


def test_2b_create_repo_in_other_namespace_is_forbidden(hub: HubServer, repo_name: str) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        hub.api("bob").create_repo(f"alice/{repo_name}")
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        hub.api("alice-read").create_repo(f"alice/{repo_name}")
    assert err.value.response.status_code == 403


def test_3_repo_exists(hub: HubServer, repo: str) -> None:
    api = hub.api()
    assert api.repo_exists(repo) is True
    assert api.repo_exists("alice/nope-never-created") is False


def test_4_private_and_gated(hub: HubServer, repo: str, hf_home: Path) -> None:
    api = hub.api()
    api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=repo)
    api.update_repo_settings(repo, private=True)
    with pytest.raises(RepositoryNotFoundError):
        hub.api(None).model_info(repo)
    with pytest.raises(RepositoryNotFoundError):
        hub.api("bob").model_info(repo)
    assert api.model_info(repo).private is True
    api.update_repo_settings(repo, private=False, gated="auto")
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo, "config.json", token=False)
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo, "config.json", token=hub.bob_token)
    assert hub.api(None).model_info(repo).gated == "auto"
    assert Path(hf_hub_download(repo, "config.json", token=hub.alice_token)).read_bytes() == b'{"a": 1}'


def test_5_delete_repo(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    api.delete_repo(f"alice/{repo_name}", missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(f"alice/{repo_name}")
    api.create_repo(f"alice/{repo_name}")
    api.delete_repo(f"alice/{repo_name}")
    assert api.repo_exists(f"alice/{repo_name}") is False


# ---------------------------------------------------------------- uploads (6-16)
def test_6_upload_bytes(hub: HubServer, repo: str) -> None:
    info = hub.api().upload_file(path_or_fileobj=b'{"a":1}', path_in_repo="config.json", repo_id=repo)
    assert is_sha(info.oid)
    assert info.repo_url.repo_id == repo


def test_7_upload_path_and_download(hub: HubServer, repo: str, tmp_path: Path, hf_home: Path) -> None:
    data = os.urandom(2_000_000)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    hub.api().upload_file(path_or_fileobj=str(src), path_in_repo="weights/model.bin", repo_id=repo)
    path = hf_hub_download(repo, "weights/model.bin", token=hub.alice_token)
    assert Path(path).read_bytes() == data


def test_8_upload_file_object(hub: HubServer, repo: str, hf_home: Path) -> None:
    data = os.urandom(1_100_000)
    hub.api().upload_file(path_or_fileobj=io.BytesIO(data), path_in_repo="blob.bin", repo_id=repo)
    assert Path(hf_hub_download(repo, "blob.bin", token=hub.alice_token)).read_bytes() == data
    files = {f.path: f for f in hub.api().list_repo_tree(repo, recursive=True)}
    assert files["blob.bin"].lfs is not None  # stored in LFS whatever the upload path


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\ntags: [demo]\n---\n# A model\n")
    (folder / "sub" / "a.txt").write_text("hello")
    (folder / "w.safetensors").write_bytes(os.urandom(1_500_000))
    return folder


def test_9_upload_folder_card(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    info = api.model_info(repo)
    assert info.card_data["license"] == "mit"
    assert "license:mit" in info.tags and "demo" in info.tags
    assert {s.rfilename for s in info.siblings} == {".gitattributes", "README.md", "sub/a.txt", "w.safetensors"}


def test_10_parent_commit_mismatch(hub: HubServer, repo: str) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        hub.api().create_commit(repo, operations=[CommitOperationAdd("x.txt", b"x")], commit_message="x",
                                parent_commit="0" * 40)
    assert err.value.response.status_code == 412


def test_10b_parent_commit_match(hub: HubServer, repo: str) -> None:
    api = hub.api()
    head = api.model_info(repo).sha
    info = api.create_commit(repo, operations=[CommitOperationAdd("x.txt", b"x")], commit_message="x",
                             parent_commit=head)
    assert api.list_repo_commits(repo)[0].commit_id == info.oid


def test_11_create_pr(hub: HubServer, repo: str, hf_home: Path) -> None:
    api = hub.api()
    info = api.create_commit(repo, operations=[CommitOperationAdd("pr.txt", b"in a PR")],
                             commit_message="Propose", create_pr=True)
    assert info.pr_revision is not None and info.pr_revision.startswith("refs/pr/")
    assert info.pr_num is not None
    path = hf_hub_download(repo, "pr.txt", revision=info.pr_revision, token=hub.alice_token)
    assert Path(path).read_bytes() == b"in a PR"
    assert is_sha(api.model_info(repo, revision=info.pr_revision).sha)
    assert "pr.txt" not in api.list_repo_files(repo)  # main is untouched


def test_11b_create_pr_by_reader(hub: HubServer, repo: str) -> None:
    """Anyone who can read may open a PR (contributor flow), but not commit to main."""
    bob = hub.api("bob")
    info = bob.create_commit(repo, operations=[CommitOperationAdd("bob.txt", b"b")], commit_message="from bob",
                             create_pr=True)
    assert info.pr_revision is not None
    with pytest.raises(HfHubHTTPError) as err:
        bob.upload_file(path_or_fileobj=b"b", path_in_repo="bob.txt", repo_id=repo)
    assert err.value.response.status_code == 403


def test_12_upload_folder_create_pr(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    info = api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo, create_pr=True)
    assert info.pr_revision is not None
    files = api.list_repo_files(repo, revision=info.pr_revision)
    assert {"README.md", "sub/a.txt", "w.safetensors"} <= set(files)
    assert "README.md" not in api.list_repo_files(repo)


def test_13_reupload_makes_no_commit(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    folder = _folder(tmp_path)
    api.upload_folder(folder_path=folder, repo_id=repo)
    before = api.list_repo_commits(repo)
    api.upload_folder(folder_path=folder, repo_id=repo)
    after = api.list_repo_commits(repo)
    assert [c.commit_id for c in after] == [c.commit_id for c in before]


def test_14_delete_file_and_folder(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    api.delete_file("sub/a.txt", repo_id=repo)
    assert "sub/a.txt" not in api.list_repo_files(repo)
    with pytest.raises(RemoteEntryNotFoundError):
        api.delete_file("nope", repo_id=repo)
    api.upload_file(path_or_fileobj=b"1", path_in_repo="logs/a.txt", repo_id=repo)
    api.upload_file(path_or_fileobj=b"2", path_in_repo="logs/b/c.txt", repo_id=repo)
    api.delete_folder("logs", repo_id=repo)
    assert not [f for f in api.list_repo_files(repo) if f.startswith("logs/")]


@pytest.mark.skipif(POLICY != "lfs", reason="datasets push_to_hub needs policy B (hf-hub-protocol.md §0.2)")
def test_15_datasets_push_to_hub(hub: HubServer, repo_name: str) -> None:
    import datasets

    datasets.Dataset.from_dict({"x": [1, 2, 3]}).push_to_hub(f"alice/{repo_name}", token=hub.alice_token)
    loaded = datasets.load_dataset(f"alice/{repo_name}", split="train", token=hub.alice_token)
    assert loaded["x"] == [1, 2, 3]


@pytest.mark.skipif(POLICY != "lfs", reason="only policy B answers 'lfs' to preupload")
def test_16_xet_path_fails_as_documented(hub: HubServer, repo: str, tmp_path: Path) -> None:
    """With hf_xet importable and HF_HUB_DISABLE_XET unset, an 'lfs' answer sends the client to Xet."""
    import subprocess
    import sys

    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(200_000))
    code = (
        "import sys; from huggingface_hub import HfApi\n"
        f"HfApi(endpoint={hub.url!r}, token={hub.alice_token!r}).upload_file(path_or_fileobj={str(src)!r}, "
        f"path_in_repo='big.bin', repo_id={repo!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "xet" in (out.stderr + out.stdout).lower()


# ---------------------------------------------------------------- listing and metadata (17-22)
def test_17_list_files_and_tree(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    assert set(api.list_repo_files(repo)) == {".gitattributes", "README.md", "sub/a.txt", "w.safetensors"}
    entries = {e.path: e for e in api.list_repo_tree(repo, recursive=True, expand=True)}
    weights = entries["w.safetensors"]
    assert weights.lfs is not None and weights.lfs.size == 1_500_000 and len(weights.lfs.sha256) == 64
    assert weights.xet_hash is None
    assert weights.last_commit is not None
    assert entries["sub/a.txt"].lfs is None and entries["sub/a.txt"].size == 5
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(repo, path_in_repo="nope"))


def test_18_paths_info(hub: HubServer, repo: str, tmp_path: Path) -> None:
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo)
    infos = api.get_paths_info(repo, ["config.json", "sub", "missing"])
    assert len(infos) == 2
    kinds = {type(i) for i in infos}
    assert kinds == {RepoFile, RepoFolder}


def test_19_files_metadata(hub: HubServer, repo: str, tmp_path: Path) -> None:
    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    info = api.model_info(repo, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings}
    assert siblings["w.safetensors"].size == 1_500_000
    assert siblings["w.safetensors"].lfs is not None
    assert siblings["sub/a.txt"].blob_id and siblings["sub/a.txt"].size == 5
    auth = {"authorization": f"Bearer {hub.alice_token}"}
    head = httpx.head(f"{hub.url}/{repo}/resolve/main/sub/a.txt", headers=auth)
    assert head.headers["x-repo-commit"] == info.sha
    assert info.last_modified is not None


def test_20_commits_and_refs(hub: HubServer, repo: str) -> None:
    api = hub.api()
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo, commit_message="Add a.txt")
    assert api.list_repo_commits(repo)[0].title == "Add a.txt"
    api.create_branch(repo, branch="dev")
    api.create_tag(repo, tag="v0")
    api.create_commit(repo, operations=[CommitOperationAdd("p.txt", b"p")], commit_message="p", create_pr=True)
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [t.name for t in refs.tags] == ["v0"]
    assert [p.ref for p in refs.pull_requests] == ["refs/pr/1"]


def test_21_branches_and_tags(hub: HubServer, repo: str, hf_home: Path) -> None:
    api = hub.api()
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo)
    api.create_branch(repo, branch="dev")
    api.create_branch(repo, branch="dev", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(repo, branch="dev")
    assert err.value.response.status_code == 409
    api.create_tag(repo, tag="v1.0")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id=repo, revision="dev")
    assert Path(hf_hub_download(repo, "f.txt", revision="v1.0", token=hub.alice_token)).read_bytes() == b"v1"
    assert Path(hf_hub_download(repo, "f.txt", revision="dev", token=hub.alice_token)).read_bytes() == b"dev"
    api.delete_branch(repo, branch="dev")
    api.delete_tag(repo, tag="v1.0")
    refs = api.list_repo_refs(repo)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []


def test_22_listing_and_pagination(hub: HubServer, repo_name: str) -> None:
    """Server page size is 2: five repos need three pages, and the Link URL keeps the filters."""
    api = hub.api("bob")
    ids = [f"bob/{repo_name}-p{i}" for i in range(5)]
    for i, rid in enumerate(ids):
        api.create_repo(rid)
        card = "---\nlicense: mit\n---\n" if i % 2 == 0 else "---\nlicense: apache-2.0\n---\n"
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
    listed = [m.id for m in api.list_models(author="bob", search=repo_name)]
    assert sorted(listed) == sorted(ids)
    found = [m.id for m in api.list_models(search=f"{repo_name}-p", limit=3)]
    assert len(found) == 3 and len(set(found)) == 3
    mit = {m.id for m in api.list_models(filter="license:mit", search=repo_name)}
    assert mit == {ids[0], ids[2], ids[4]}
    api.create_repo(f"bob/{repo_name}-ds", repo_type="dataset")
    assert [d.id for d in api.list_datasets(author="bob", search=repo_name)] == [f"bob/{repo_name}-ds"]
    newest = [m.id for m in api.list_models(search=repo_name, sort="lastModified", limit=1)]
    assert newest == [ids[-1]]


def test_22b_private_repos_are_not_listed(hub: HubServer, repo_name: str) -> None:
    hub.api().create_repo(f"alice/{repo_name}", private=True)
    assert [m.id for m in hub.api("bob").list_models(search=repo_name)] == []
    assert [m.id for m in hub.api(None).list_models(search=repo_name)] == []
    assert [m.id for m in hub.api().list_models(search=repo_name)] == [f"alice/{repo_name}"]


# ---------------------------------------------------------------- downloads (23-28)
def test_23_download_revisions(hub: HubServer, repo: str, hf_home: Path) -> None:
    api = hub.api()
    first = api.upload_file(path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo)
    api.create_tag(repo, tag="t1")
    api.create_branch(repo, branch="b1")
    api.upload_file(path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo)
    pr = api.create_commit(repo, operations=[CommitOperationAdd("f.txt", b"pr")], commit_message="pr",
                           create_pr=True)
    tok = hub.alice_token
    for rev, want in (("main", b"two"), ("t1", b"one"), ("b1", b"one"), (first.oid, b"one"),
                      (pr.pr_revision, b"pr")):
        assert Path(hf_hub_download(repo, "f.txt", revision=rev, token=tok)).read_bytes() == want, rev


def test_23b_second_download_is_cached(hub: HubServer, repo: str, hf_home: Path) -> None:
    hub.api().upload_file(path_or_fileobj=os.urandom(3_000_000), path_in_repo="w.bin", repo_id=repo)
    a = hf_hub_download(repo, "w.bin", token=hub.alice_token)
    b = hf_hub_download(repo, "w.bin", token=hub.alice_token)
    assert a == b


def test_24_download_errors(hub: HubServer, repo: str, hf_home: Path) -> None:
    hub.api().upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo, "nope.txt", token=hub.alice_token)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "x.txt", revision="nobranch", token=hub.alice_token)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/nope-never-created", "x.txt", token=hub.alice_token)
    assert try_to_load_from_cache(repo, "nope.txt", cache_dir=hf_home) is _CACHED_NO_EXIST


def test_25_snapshot_download_patterns(hub: HubServer, repo: str, tmp_path: Path, hf_home: Path) -> None:
    api = hub.api()
    api.upload_folder(folder_path=_folder(tmp_path), repo_id=repo)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo)
    local = Path(snapshot_download(repo, allow_patterns=["*.json", "sub/*"], token=hub.alice_token))
    got = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert got == ["config.json", "sub/a.txt"]


def test_26_hf_file_system_range(hub: HubServer, repo: str) -> None:
    data = os.urandom(2_000_000)
    hub.api().upload_file(path_or_fileobj=data, path_in_repo="weights/model.bin", repo_id=repo)
    fs = HfFileSystem(endpoint=hub.url, token=hub.alice_token)
    with fs.open(f"{repo}/weights/model.bin", "rb") as f:
        f.seek(1000)
        assert f.read(10) == data[1000:1010]
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(repo, detail=False)}
    assert {"weights", ".gitattributes"} <= names
    assert fs.info(f"{repo}/weights/model.bin")["size"] == 2_000_000


def test_27_file_exists(hub: HubServer, repo: str) -> None:
    api = hub.api()
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo)
    assert api.file_exists(repo, "config.json") is True
    assert api.file_exists(repo, "missing.json") is False


def test_28_resolve_headers(hub: HubServer, repo: str) -> None:
    api = hub.api()
    big = os.urandom(1_234_567)
    api.upload_file(path_or_fileobj=big, path_in_repo="big.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"small text", path_in_repo="s.txt", repo_id=repo)
    auth = {"authorization": f"Bearer {hub.alice_token}"}
    for path, size in (("big.bin", len(big)), ("s.txt", 10)):
        r = httpx.head(f"{hub.url}/{repo}/resolve/main/{path}", headers=auth)
        assert r.status_code in (200, 302)
        length = r.headers.get("x-linked-size") or r.headers.get("content-length")
        assert int(length) == size
        assert is_sha(r.headers["x-repo-commit"])
        assert not [h for h in r.headers if h.lower().startswith("x-xet")]
        assert "xet-auth" not in r.headers.get("link", "")
    # Range on a git-stored file: 206 and 416
    r = httpx.get(f"{hub.url}/{repo}/resolve/main/s.txt", headers={**auth, "range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == b"all " and r.headers["content-range"] == "bytes 2-5/10"
    r = httpx.get(f"{hub.url}/{repo}/resolve/main/s.txt", headers={**auth, "range": "bytes=10-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10"
    # Range through the LFS path (redirect followed)
    r = httpx.get(f"{hub.url}/{repo}/resolve/main/big.bin", headers={**auth, "range": "bytes=100-199"},
                  follow_redirects=True)
    assert r.status_code == 206 and r.content == big[100:200]


def test_28b_entry_not_found_carries_commit(hub: HubServer, repo: str) -> None:
    r = httpx.head(f"{hub.url}/{repo}/resolve/main/none.json", headers={"authorization": f"Bearer {hub.alice_token}"})
    assert r.status_code == 404
    assert r.headers["x-error-code"] == "EntryNotFound" and is_sha(r.headers["x-repo-commit"])


def test_28c_encoded_revision_and_path(hub: HubServer, repo: str) -> None:
    api = hub.api()
    api.create_commit(repo, operations=[CommitOperationAdd("dir/with space #1.txt", b"odd")], commit_message="odd",
                      create_pr=True)
    auth = {"authorization": f"Bearer {hub.alice_token}"}
    r = httpx.get(f"{hub.url}/{repo}/resolve/refs%2Fpr%2F1/dir/with%20space%20%231.txt", headers=auth)
    assert r.status_code == 200 and r.content == b"odd"
    r = httpx.get(f"{hub.url}/{repo}/resolve/refs/pr/1/dir/with%20space%20%231.txt", headers=auth)
    assert r.status_code == 200 and r.content == b"odd"
    tree = httpx.get(f"{hub.url}/api/models/{repo}/tree/refs%2Fpr%2F1/dir", headers=auth).json()
    assert [e["path"] for e in tree] == ["dir/with space #1.txt"]


# ---------------------------------------------------------------- datasets (30-31) and discussions (32)
def test_30_load_dataset_csv_and_streaming(hub: HubServer, repo_name: str) -> None:
    import datasets

    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"---\nlicense: cc0-1.0\n---\n# data\n", path_in_repo="README.md", repo_id=rid,
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,x\n2,y\n3,z\n", path_in_repo="data/train.csv", repo_id=rid,
                    repo_type="dataset")
    ds = datasets.load_dataset(rid, split="train", token=hub.alice_token)
    assert ds["a"] == [1, 2, 3] and ds["b"] == ["x", "y", "z"]
    streamed = datasets.load_dataset(rid, split="train", streaming=True, token=hub.alice_token)
    assert [r["a"] for r in streamed] == [1, 2, 3]


def test_31_private_and_gated_dataset(hub: HubServer, repo_name: str) -> None:
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"a\n1\n", path_in_repo="data/train.csv", repo_id=rid, repo_type="dataset")
    with pytest.raises(DatasetNotFoundError):
        datasets.load_dataset(rid, split="train", token=False)
    api.update_repo_settings(rid, private=False, gated="manual", repo_type="dataset")
    with pytest.raises(DatasetNotFoundError, match="gated"):
        datasets.load_dataset(rid, split="train", token=False, download_mode="force_redownload")


def test_32_discussions(hub: HubServer, repo: str) -> None:
    api = hub.api()
    disc = api.create_discussion(repo, title="Q", description="Why?")
    pr = api.create_pull_request(repo, title="PR", description="Please merge")
    assert pr.git_reference == f"refs/pr/{pr.num}"
    nums = {d.num for d in api.get_repo_discussions(repo)}
    assert {disc.num, pr.num} <= nums
    comment = api.comment_discussion(repo, disc.num, "hi")
    assert comment.content == "hi"
    details = api.get_discussion_details(repo, disc.num)
    assert [e.type for e in details.events] == ["comment", "comment"]
    api.change_discussion_status(repo, disc.num, "closed")
    assert api.get_discussion_details(repo, disc.num).status == "closed"
    api.rename_discussion(repo, disc.num, "Q2")
    assert api.get_discussion_details(repo, disc.num).title == "Q2"


def test_32b_pull_request_merge(hub: HubServer, repo: str, hf_home: Path) -> None:
    api = hub.api()
    api.upload_file(path_or_fileobj=b"base", path_in_repo="base.txt", repo_id=repo)
    bob = hub.api("bob")
    pr = bob.create_commit(repo, operations=[CommitOperationAdd("new.txt", b"from PR")], commit_message="Add new",
                           create_pr=True)
    api.upload_file(path_or_fileobj=b"moved on", path_in_repo="other.txt", repo_id=repo)  # main moves: real merge
    with pytest.raises(HfHubHTTPError) as err:
        bob.merge_pull_request(repo, pr.pr_num)
    assert err.value.response.status_code == 403
    api.merge_pull_request(repo, pr.pr_num)
    assert {"base.txt", "new.txt", "other.txt"} <= set(api.list_repo_files(repo))
    assert api.get_discussion_details(repo, pr.pr_num).status == "merged"
    assert Path(hf_hub_download(repo, "new.txt", token=hub.alice_token)).read_bytes() == b"from PR"


def test_validate_yaml_answers_json(hub: HubServer) -> None:
    ok = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n", "repoType": "model"})
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: [\n---\n", "repoType": "model"})
    assert bad.status_code == 400 and bad.json()["errors"]


def test_xet_token_routes_are_absent(hub: HubServer, repo: str) -> None:
    auth = {"authorization": f"Bearer {hub.alice_token}"}
    for kind in ("xet-read-token", "xet-write-token"):
        assert httpx.get(f"{hub.url}/api/models/{repo}/{kind}/main", headers=auth).status_code == 404


def test_active_content_is_never_served_as_a_page(hub: HubServer, repo: str) -> None:
    """HTML or SVG in a repo must not run on the hub's origin (it would reach signed-in sessions)."""
    api = hub.api()
    api.upload_file(path_or_fileobj=b"<script>alert(1)</script>", path_in_repo="x.html", repo_id=repo)
    api.upload_file(path_or_fileobj=b"<svg onload='alert(1)'/>", path_in_repo="x.svg", repo_id=repo)
    for name in ("x.html", "x.svg"):
        r = httpx.get(f"{hub.url}/{repo}/resolve/main/{name}", headers={"authorization": f"Bearer {hub.alice_token}"})
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
