"""The metadata panel: what a card's front matter says."""

from __future__ import annotations

from commons.web.cardmeta import card_facts, human_count


def test_facts_from_front_matter() -> None:
    facts = card_facts({
        "license": "mit", "base_model": ["a/b", "c/d"], "datasets": "x/y", "language": ["en"],
        "library_name": "transformers", "pipeline_tag": "text-generation", "parameters": 7_241_732_096,
        "model-index": [{"name": "m", "results": [
            {"task": {"type": "text-generation"}, "dataset": {"name": "MMLU"},
             "metrics": [{"type": "acc", "value": 0.61234}, {"name": "no value"}]},
            "not a result",
        ]}],
        "extra_gated_fields": {"Company": "text", "I agree": "checkbox"},
    })
    assert facts.licenses == ["mit"] and facts.base_models == ["a/b", "c/d"] and facts.datasets == ["x/y"]
    assert facts.parameters == "7.24B" and facts.library == "transformers"
    assert [(e.dataset, e.metric, e.value) for e in facts.evals] == [("MMLU", "acc", "0.6123")]
    assert facts.gated_fields == {"Company": "text", "I agree": "checkbox"}
    assert not facts.empty


def test_odd_front_matter_does_not_break_the_panel() -> None:
    assert card_facts(None).empty
    facts = card_facts({"license": None, "model-index": "oops", "parameters": True, "language": [None, ""]})
    assert facts.empty and facts.evals == []


def test_human_count() -> None:
    assert human_count(135_000_000) == "135M"
    assert human_count(1_500) == "1.5K"
    assert human_count(12) == "12"
