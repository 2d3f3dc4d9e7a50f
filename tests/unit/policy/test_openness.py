"""Model Openness Framework classes from a repo's files, card and lineage."""

from __future__ import annotations

from typing import Any

from policy_builders import D, M

from commons.policy import RepoContents, build_lineage, classify_openness, evaluate, model
from commons.policy.openness import ComponentStatus, load_mof_rules

REF = model("acme/open-7b")
OPEN_FILES = (
    "README.md",
    "config.json",
    "modeling_open.py",
    "model.safetensors",
    "train.py",
    "inference.py",
    "eval_harness.py",
    "preprocess_data.py",
    "technical_report.pdf",
    "checkpoint-1000/model.safetensors",
    "trainer_state.json",
    "requirements.txt",
)
OPEN_CARD: dict[str, Any] = {
    "license": "apache-2.0",
    "library_name": "transformers",
    "datasets": ["acme/pile-cc0"],
    "tags": ["arxiv:2403.13784"],
    "model-index": [{"name": "open-7b", "results": [{"dataset": {"type": "acme/eval-set", "name": "eval"}}]}],
}


def _lineage(train_license: str | None = "cc0-1.0", eval_license: str | None = "cdla-permissive-2.0") -> Any:
    return build_lineage(
        [
            M("acme/open-7b", **OPEN_CARD),
            D("acme/pile-cc0", train_license),
            D("acme/eval-set", eval_license),
        ]
    )


def test_a_fully_open_model_is_class_one() -> None:
    report = classify_openness(RepoContents(REF, OPEN_FILES, OPEN_CARD), _lineage())
    assert report.mof_class == 1, [
        (r.component.key, r.status, r.reasons) for r in report.components if not r.status.counts
    ]
    assert report.class_label == "Class I - Open Science"
    assert dict(report.progress) == {3: 100.0, 2: 100.0, 1: 100.0}
    # Apache-2.0 is open but not type-appropriate for data (the weights): counted, with a warning.
    assert report.result("model_parameters").status is ComponentStatus.INCLUDED_NOT_TYPE_APPROPRIATE
    assert report.result("model_architecture").status is ComponentStatus.INCLUDED
    assert report.result("datasets").license == "CC0-1.0"
    assert report.osaid == "likely conforms"
    assert report.engine_version


def test_type_license_makes_weights_type_appropriate() -> None:
    card = OPEN_CARD | {"mof_licenses": {"data": "cdla-permissive-2.0"}}
    report = classify_openness(RepoContents(REF, OPEN_FILES, card), _lineage())
    assert report.result("model_parameters").status is ComponentStatus.INCLUDED
    assert report.result("model_parameters").license == "CDLA-Permissive-2.0"


def test_without_training_code_it_is_class_three() -> None:
    files = ("README.md", "config.json", "model.safetensors", "technical_report.pdf")
    card = OPEN_CARD | {"library_name": "transformers"}
    report = classify_openness(RepoContents(REF, files, card), _lineage())
    assert report.mof_class == 3
    assert report.result("training_code").status is ComponentStatus.MISSING
    # transformers supplies the architecture and inference code, under Apache-2.0
    assert report.result("model_architecture").license == "Apache-2.0"
    assert report.result("inference_code").status.counts


def test_commons_jobs_supply_training_and_evaluation_code() -> None:
    files = ("README.md", "config.json", "model.safetensors", "technical_report.pdf", "preprocess.py")
    contents = RepoContents(
        REF, files, OPEN_CARD, revisions=("main", "step-500"), produced_by_commons_job=True, evaluated_by_commons=True
    )
    report = classify_openness(contents, _lineage())
    assert report.result("training_code").license == "Apache-2.0"
    assert "Commons job" in report.result("training_code").reasons[0]
    assert report.result("evaluation_code").status.counts
    assert report.result("intermediate_checkpoints").status.counts
    assert report.mof_class == 1


def test_a_llama_licensed_model_is_not_open() -> None:
    card = OPEN_CARD | {"license": "llama3.1"}
    report = classify_openness(RepoContents(REF, OPEN_FILES, card), _lineage())
    assert report.mof_class == 0 and report.class_label == "Unclassified"
    assert report.result("model_parameters").status is ComponentStatus.NOT_OPEN
    assert report.osaid == "does not conform"


def test_inherited_terms_close_declared_open_weights() -> None:
    facts = [M("acme/open-7b", "apache-2.0", base="meta-llama/Llama-3.1-8B"), M("meta-llama/Llama-3.1-8B", "llama3.1")]
    lineage = build_lineage(facts)
    decision = evaluate(lineage, REF)
    report = classify_openness(RepoContents(REF, OPEN_FILES, OPEN_CARD | {"license": "apache-2.0"}), lineage, decision)
    params = report.result("model_parameters")
    assert params.status is ComponentStatus.NOT_OPEN
    assert "llama3.1" in params.reasons[-1]


def test_unlicensed_datasets_do_not_count() -> None:
    report = classify_openness(RepoContents(REF, OPEN_FILES, OPEN_CARD), _lineage(train_license=None))
    assert report.result("datasets").status is ComponentStatus.UNLICENSED
    assert report.mof_class == 2
    assert any("MOF paper accepts unlicensed datasets" in n for n in report.notes)


def test_non_commercial_eval_data_blocks_class_two() -> None:
    report = classify_openness(RepoContents(REF, OPEN_FILES, OPEN_CARD), _lineage(eval_license="cc-by-nc-4.0"))
    assert report.result("evaluation_data").status is ComponentStatus.NOT_OPEN
    assert report.mof_class == 3


def test_paper_stands_in_for_the_technical_report() -> None:
    files = tuple(f for f in OPEN_FILES if f != "technical_report.pdf")
    report = classify_openness(RepoContents(REF, files, OPEN_CARD), _lineage())
    assert report.result("technical_report").status.counts
    assert "research paper stands in" in report.result("technical_report").reasons[0]
    assert report.mof_class == 1


def test_mof_components_declare_external_code() -> None:
    files = ("README.md", "config.json", "model.safetensors")
    card = OPEN_CARD | {
        "mof_components": {
            "training_code": {"license": "mit", "url": "https://github.com/acme/train"},
            "evaluation_code": "Apache-2.0",
            "technical_report": {"license": "cc-by-4.0"},
        }
    }
    report = classify_openness(RepoContents(REF, files, card), _lineage())
    assert report.result("training_code").license == "MIT"
    assert "https://github.com/acme/train" in report.result("training_code").reasons[0]
    assert report.result("technical_report").status is ComponentStatus.INCLUDED


def test_an_empty_repo_is_unclassified() -> None:
    report = classify_openness(RepoContents(REF, (), {}))
    assert report.mof_class == 0
    assert all(r.status is ComponentStatus.MISSING for r in report.components)
    assert len(report.components) == len(load_mof_rules().components) == 17
