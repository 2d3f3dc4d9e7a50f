"""Which GGUF the llama.cpp engine serves from a repo: its own file (by type when there are several), or
an export of its checkpoint when it has no file of the type asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from commons.serving.llamacpp_engine import has_gguf, model_file, pick_gguf


def repo(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_bytes(b"GGUF")
    return tmp_path


def test_the_only_gguf_or_the_one_of_the_type_asked_for(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    one = repo(tmp_path / "one", "m-Q4_0.gguf")
    assert pick_gguf(one, None) == one / "m-Q4_0.gguf"
    assert pick_gguf(one, "q4_0") == one / "m-Q4_0.gguf"  # case does not matter
    assert pick_gguf(one, "Q8_0") is None
    (tmp_path / "two").mkdir()
    two = repo(tmp_path / "two", "m-Q4_0.gguf", "m-Q6_K.gguf")
    assert pick_gguf(two, "Q6_K") == two / "m-Q6_K.gguf"
    with pytest.raises(ValueError, match="several GGUF files"):
        pick_gguf(two, None)
    (tmp_path / "none").mkdir()
    assert not has_gguf(tmp_path / "none") and has_gguf(two)
    assert pick_gguf(tmp_path / "none", None) is None


def test_a_type_the_repo_lacks_needs_a_checkpoint(tmp_path: Path) -> None:
    gguf_only = repo(tmp_path, "m-Q4_0.gguf")
    with pytest.raises(ValueError, match=r"no GGUF of type F16 in the repo .* no checkpoint to export"):
        model_file(gguf_only, tmp_path / "cache", "F16")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="exported to GGUF as one of"):
        model_file(gguf_only, tmp_path / "cache", "Q6_K")  # not a type our exporter writes
