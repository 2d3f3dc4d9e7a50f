from __future__ import annotations

import pytest

from commons.errors import InvalidRequest
from commons.hub.ids import RepoRef, RepoType, is_commit_sha, validate_name, validate_path, validate_ref_name


@pytest.mark.parametrize("name", ["m1", "SmolLM2-135M-Instruct", "a.b_c-d", "x" * 96])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", ".a", "a..b", "a--b", "a.git", "a/b", "a b", "x" * 97, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_name(name)


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/file.bin", "with space #1.txt", ".gitattributes", "ü.md"])
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    "path", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "a\\b", "nul\0", ".git/config", "x/.git/hooks",
             "a/", "ctrl\x01", "x" * 1001]
)
def test_hostile_paths(path: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_path(path)


@pytest.mark.parametrize("name", ["dev", "feature/x", "v1.0"])
def test_ref_names(name: str) -> None:
    assert validate_ref_name(name) == name


@pytest.mark.parametrize("name", ["", "a..b", "a b", "a~1", "x.lock", "/x", "x/", "refs/heads/x", "a@{b"])
def test_bad_ref_names(name: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_ref_name(name)


def test_repo_ref_parse_and_prefix() -> None:
    ref = RepoRef.parse(RepoType.DATASET, "alice/ds")
    assert ref.repo_id == "alice/ds" and ref.type.url_prefix == "datasets/"
    assert RepoType.MODEL.url_prefix == ""
    with pytest.raises(InvalidRequest):
        RepoRef.parse(RepoType.MODEL, "gpt2")


def test_is_commit_sha() -> None:
    assert is_commit_sha("a" * 40)
    assert not is_commit_sha("A" * 40) and not is_commit_sha("a" * 39) and not is_commit_sha("main")
