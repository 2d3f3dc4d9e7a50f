"""URLs of the web UI."""

from __future__ import annotations

import pytest

from commons.web.urls import blob_url, repo_url, safe_next, search_url, tree_url, unsplit_revision


def test_repo_urls() -> None:
    assert repo_url("model", "a", "b") == "/a/b"
    assert repo_url("dataset", "a", "b") == "/datasets/a/b"
    assert tree_url("/a/b", "refs/pr/1", "dir x/f") == "/a/b/tree/refs%2Fpr%2F1/dir%20x/f"
    assert blob_url("/a/b", "main", "c.json") == "/a/b/blob/main/c.json"


@pytest.mark.parametrize(("rev", "path", "expected"), [
    ("main", "a/b", ("main", "a/b")),
    ("refs%2Fpr%2F3", "x", ("refs/pr/3", "x")),
    ("refs", "pr/3/x/y", ("refs/pr/3", "x/y")),
    ("refs", "convert/parquet", ("refs/convert/parquet", "")),
])
def test_unsplit_revision(rev: str, path: str, expected: tuple[str, str]) -> None:
    assert unsplit_revision(rev, path) == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("/settings", "/settings"), (None, "/"), ("https://evil.example", "/"), ("//evil.example", "/"),
    ("/\\evil.example", "/"),
])
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_search_url_keeps_filters_and_resets_the_page() -> None:
    current = {"search": "llama", "sort": "likes", "license": "mit"}
    assert search_url("/models", current, license=None) == "/models?search=llama&sort=likes"
    assert search_url("/models", current, sort="downloads") == "/models?search=llama&sort=downloads&license=mit"
