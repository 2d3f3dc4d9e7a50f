from __future__ import annotations

import pytest

from commons.hub.cards import CardError, card_tags, split_front_matter, validate_card


def test_front_matter_parsed() -> None:
    meta, body = split_front_matter("---\nlicense: mit\ndate: 2024-01-01\ntags: [a, b]\n---\n# Title\n")
    assert meta == {"license": "mit", "date": "2024-01-01", "tags": ["a", "b"]}
    assert body == "# Title\n"


def test_no_front_matter() -> None:
    assert split_front_matter("# Just text\n") == (None, "# Just text\n")


@pytest.mark.parametrize("text", ["---\nlicense: [\n---\n", "---\n- a list\n---\n"])
def test_invalid_front_matter(text: str) -> None:
    with pytest.raises(CardError):
        split_front_matter(text)
    assert validate_card(text)


def test_validate_card_types() -> None:
    assert validate_card("---\nlicense: mit\nbase_model: a/b\n---\n") == []
    assert validate_card("---\ntags: {a: 1}\n---\n")


def test_tags() -> None:
    tags = card_tags({"license": "apache-2.0", "tags": ["x"], "base_model": "org/base",
                      "base_model_relation": "adapter", "datasets": ["d/1"], "language": ["en"],
                      "library_name": "peft"})
    assert tags == ["x", "peft", "license:apache-2.0", "dataset:d/1", "base_model:org/base",
                    "base_model:adapter:org/base", "en"]
