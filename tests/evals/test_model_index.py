"""Task records -> model-index in a card, merged into what is there, read back by huggingface_hub."""

from __future__ import annotations

import pytest
import yaml

from commons.evals.model_index import card_with_results, model_index

SHA = "c" * 40
RECORDS = [
    {"task": "hellaswag", "task_version": "1", "harness_version": "1", "settings_hash": "ab12", "n": 200,
     "n_total": 10042, "headline": "acc_norm", "dataset": {"repo": "benchmarks/hellaswag", "sha": SHA},
     "metrics": [{"name": "acc", "value": 0.31, "stderr": 0.0327, "ci95": [0.246, 0.374], "n": 200},
                 {"name": "acc_norm", "value": 0.405, "stderr": 0.0348, "ci95": [0.337, 0.473], "n": 200}]},
    {"task": "bbq", "task_version": "1", "harness_version": "1", "settings_hash": "ab12", "n": 240, "n_total": 7800,
     "headline": "acc", "dataset": {"repo": "benchmarks/bbq", "sha": SHA},
     "metrics": [{"name": "acc", "value": 0.4, "stderr": 0.03, "ci95": [0.34, 0.46], "n": 240},
                 {"name": "bias_ambig", "value": 0.05, "stderr": 0.02, "ci95": [0.01, 0.09], "n": 120}]},
]


def test_model_index_round_trips_through_huggingface_hub() -> None:
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.repocard_data import model_index_to_eval_results

    index = model_index(RECORDS, "demo/smollm2")
    name, results = model_index_to_eval_results(index)
    assert name == "demo/smollm2"
    got = {(r.dataset_type, r.metric_type): r.metric_value for r in results}
    assert got == {("benchmarks/hellaswag", "acc_norm"): 0.405, ("benchmarks/hellaswag", "acc"): 0.31,
                   ("benchmarks/bbq", "acc"): 0.4, ("benchmarks/bbq", "bias_ambig"): 0.05}
    first = results[0]  # the headline metric comes first
    assert (first.metric_type, first.task_name, first.dataset_name, first.dataset_revision) == \
           ("acc_norm", "hellaswag", "HellaSwag", SHA)
    assert first.metric_args == {"n": 200, "n_total": 10042, "stderr": 0.0348, "ci95": [0.337, 0.473],
                                 "task_version": "1", "harness_version": "1", "settings_hash": "ab12",
                                 "num_fewshot": 0}
    card = hub.ModelCard(card_with_results("---\nlicense: apache-2.0\n---\n# Demo\n", index))
    assert card.data.license == "apache-2.0" and card.data.model_name == "demo/smollm2"
    assert [(r.dataset_type, r.metric_type, r.metric_value) for r in card.data.eval_results] == \
           [(r.dataset_type, r.metric_type, r.metric_value) for r in results]
    assert card.text.strip() == "# Demo"


def test_card_without_front_matter_gets_one() -> None:
    text = card_with_results("# Just text\n", model_index(RECORDS, "m"))
    assert text.startswith("---\nmodel-index:") and text.endswith("# Just text\n")
    assert card_with_results(None, model_index(RECORDS, "m")).startswith("---\nmodel-index:")


def test_results_merge_into_an_existing_model_index() -> None:
    existing = {"license": "mit", "model-index": [{"name": "m", "results": [
        {"task": {"type": "text-generation"}, "dataset": {"type": "other/mmlu", "name": "MMLU"},
         "metrics": [{"type": "acc", "value": 0.5}]},
        {"task": {"type": "text-generation", "name": "hellaswag"},
         "dataset": {"type": "benchmarks/hellaswag", "name": "HellaSwag"}, "metrics": [{"type": "acc", "value": 0.1}]},
    ]}]}
    readme = "---\n" + yaml.safe_dump(existing) + "---\nbody\n"
    meta = yaml.safe_load(card_with_results(readme, model_index(RECORDS[:1], "m")).split("---\n")[1])
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["type"] for r in results] == ["other/mmlu", "benchmarks/hellaswag"]  # replaced, not added
    assert results[1]["metrics"][0] == {"type": "acc_norm", "value": 0.405, "name": "acc_norm",
                                        "args": results[1]["metrics"][0]["args"], "verified": False}
    assert meta["license"] == "mit"


def test_front_matter_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="not a YAML mapping"):
        card_with_results("---\n- a list\n---\nbody\n", model_index(RECORDS, "m"))
