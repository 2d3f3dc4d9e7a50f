from __future__ import annotations

from pathlib import Path

import pytest

from commons.errors import Conflict, EntryNotFound, InvalidRequest, PreconditionFailed, RevisionNotFound
from commons.hub.gitrepo import Change, GitRepo


@pytest.fixture
def git(tmp_path: Path) -> GitRepo:
    return GitRepo.create(tmp_path / "r.git", "*.bin filter=lfs\n", "alice")


def _commit(git: GitRepo, changes: list[Change], folders: list[str] | None = None, **kw: object) -> str:
    with git.locked():
        return git.commit("refs/heads/main", changes, folders or [], "msg", "alice", **kw)  # type: ignore[arg-type]


def test_initial_commit_holds_gitattributes(git: GitRepo) -> None:
    head = git.resolve("main")
    assert [e.path for e in git.list_tree(head)] == [".gitattributes"]
    assert not (git.path.parent / "r.git.creating").exists()


def test_commit_add_delete_and_resolve(git: GitRepo) -> None:
    blob = git.create_blob(b"hi")
    c1 = _commit(git, [Change("a/b.txt", blob), Change("c.txt", blob)])
    assert {e.path for e in git.list_tree(c1, recursive=True)} == {".gitattributes", "a", "a/b.txt", "c.txt"}
    c2 = _commit(git, [Change("c.txt", None)], ["a"])
    assert [e.path for e in git.list_tree(c2, recursive=True)] == [".gitattributes"]
    assert git.resolve(c1[:8]) == c1 and git.resolve(c1) == c1
    with pytest.raises(RevisionNotFound):
        git.resolve("nope")
    with pytest.raises(EntryNotFound):
        _commit(git, [Change("missing.txt", None)])
    with pytest.raises(EntryNotFound):
        _commit(git, [], ["missing-dir"])


def test_expected_parent_is_compare_and_swap(git: GitRepo) -> None:
    head = git.resolve("main")
    _commit(git, [Change("x", git.create_blob(b"x"))], expected_parent=head)
    with pytest.raises(PreconditionFailed):
        _commit(git, [Change("y", git.create_blob(b"y"))], expected_parent=head)


def test_file_directory_clash_rejected(git: GitRepo) -> None:
    _commit(git, [Change("a", git.create_blob(b"x"))])
    with pytest.raises(InvalidRequest):
        _commit(git, [Change("a/b", git.create_blob(b"y"))])


def test_refs_branches_tags_prs(git: GitRepo) -> None:
    head = git.resolve("main")
    git.create_ref("refs/heads/dev", head)
    git.create_ref("refs/tags/v1", head)
    git.create_ref("refs/pr/1", head)
    with pytest.raises(Conflict):
        git.create_ref("refs/tags/v1", head)
    refs = git.refs()
    assert [b[0] for b in refs["branches"]] == ["dev", "main"]
    assert [t[0] for t in refs["tags"]] == ["v1"] and [p[0] for p in refs["pulls"]] == ["refs/pr/1"]
    assert git.writable_ref("refs/pr/1") == "refs/pr/1" and git.writable_ref("dev") == "refs/heads/dev"
    with pytest.raises(InvalidRequest):
        git.writable_ref("v1")
    with pytest.raises(RevisionNotFound):
        git.writable_ref("nobranch")


def test_log_and_last_commit(git: GitRepo) -> None:
    c1 = _commit(git, [Change("a", git.create_blob(b"1"))])
    c2 = _commit(git, [Change("b", git.create_blob(b"2"))])
    assert [c.id for c in git.log(c2)][:2] == [c2, c1]
    found = git.last_commit_for(c2, ["a", "b"])
    assert found["a"].id == c1 and found["b"].id == c2


def test_merge_trees(git: GitRepo) -> None:
    base = git.resolve("main")
    git.create_ref("refs/pr/1", base)
    with git.locked():
        pr = git.commit("refs/pr/1", [Change("pr.txt", git.create_blob(b"p"))], [], "pr", "bob")
    main = _commit(git, [Change("main.txt", git.create_blob(b"m"))])
    merged = git.merge_trees(base, main, pr, "merge", "alice")
    assert {e.path for e in git.list_tree(merged)} == {".gitattributes", "pr.txt", "main.txt"}


def test_destroy(git: GitRepo) -> None:
    git.destroy()
    assert not git.path.exists()
