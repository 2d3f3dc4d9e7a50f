from __future__ import annotations

from commons.hub.attributes import DEFAULT_GITATTRIBUTES, LfsRules, with_tracked_paths


def test_default_rules_track_model_formats() -> None:
    rules = LfsRules(DEFAULT_GITATTRIBUTES)
    for path in ("model.safetensors", "a/b/pytorch_model.bin", "x.gguf", "saved_model/v/w", "ev.tfevents.1"):
        assert rules.tracks(path), path
    for path in ("config.json", "README.md", "tokenizer.json", "data/train.csv"):
        assert not rules.tracks(path), path


def test_last_matching_line_wins() -> None:
    rules = LfsRules("*.bin filter=lfs diff=lfs merge=lfs -text\nsmall.bin -filter\n")
    assert rules.tracks("big.bin") and not rules.tracks("small.bin")


def test_exact_paths_with_special_characters() -> None:
    text = with_tracked_paths("", ["dir/my big file[1].txt", "star*.txt"])
    rules = LfsRules(text)
    assert rules.tracks("dir/my big file[1].txt") and rules.tracks("star*.txt")
    assert not rules.tracks("dir/my bigXfile[1].txt") and not rules.tracks("starX.txt")
