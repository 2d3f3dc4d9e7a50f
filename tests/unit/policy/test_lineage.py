"""Building the lineage graph from cards, provenance records and file evidence."""

from __future__ import annotations

import pytest
from policy_builders import M

from commons.policy import (
    EdgeSource,
    EdgeStatus,
    FileEvidence,
    Lineage,
    RepoFacts,
    RepoKind,
    RepoNode,
    RepoRef,
    TensorComparison,
    build_lineage,
    dataset,
    evidence_from_files,
    model,
    referenced_repos,
)
from commons.policy.ancestry import walk
from commons.policy.facts import Channel, Relation
from commons.policy.lineage import card_edges, node_from_facts, parse_ref, provenance_edges

ROOT = model("acme/child")


def _edges(facts: RepoFacts) -> dict[RepoRef, tuple[Relation, EdgeStatus, tuple[EdgeSource, ...]]]:
    lineage = build_lineage([facts])
    return {e.parent: (e.relation, e.status, e.sources) for e in lineage.parents(facts.ref)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("org/name", RepoRef(RepoKind.MODEL, "org/name")),
        ("org/name@abc123", RepoRef(RepoKind.MODEL, "org/name", "abc123")),
        ("https://huggingface.co/org/name", RepoRef(RepoKind.MODEL, "org/name")),
        ("https://huggingface.co/datasets/org/data", RepoRef(RepoKind.DATASET, "org/data")),
        ({"repo": "org/name", "revision": "f00"}, RepoRef(RepoKind.MODEL, "org/name", "f00")),
        ("", None),
        (42, None),
    ],
)
def test_parse_ref(value: object, expected: RepoRef | None) -> None:
    assert parse_ref(RepoKind.MODEL, value) == expected


def test_card_edges_cover_every_declared_kind() -> None:
    card = {
        "base_model": ["org/a", "org/b"],
        "datasets": ["org/d1"],
        "trained_on_outputs_of": ["org/teacher", {"id": "org/generator", "relation": "synthetic_data"}],
        "model-index": [
            {
                "name": "m",
                "results": [{"dataset": {"type": "org/bench", "name": "Bench"}}, {"dataset": {"type": "mmlu"}}],
            }
        ],
    }
    edges = {(e.parent, e.relation) for e in card_edges(ROOT, card)}
    assert edges == {
        (model("org/a"), Relation.MERGE),
        (model("org/b"), Relation.MERGE),
        (dataset("org/d1"), Relation.TRAINING),
        (model("org/teacher"), Relation.DISTILLATION),
        (model("org/generator"), Relation.SYNTHETIC_DATA),
        (dataset("org/bench"), Relation.EVALUATION),  # "mmlu" is not a Hub id and is skipped
    }


def test_dataset_card_edges() -> None:
    ref = dataset("acme/derived")
    card = {"source_datasets": ["original", "extended|org/raw"], "generated_by": ["org/gen-model"]}
    assert {(e.parent, e.relation) for e in card_edges(ref, card)} == {
        (dataset("org/raw"), Relation.SOURCE),
        (model("org/gen-model"), Relation.SYNTHETIC_DATA),
    }


@pytest.mark.parametrize(
    ("card", "evidence", "relation"),
    [
        ({"base_model": "org/a"}, None, Relation.FINETUNE),
        ({"base_model": "org/a", "base_model_relation": "adapter"}, None, Relation.ADAPTER),
        ({"base_model": "org/a"}, FileEvidence(adapter_base="org/a"), Relation.ADAPTER),
        ({"base_model": "org/a"}, FileEvidence(quantization="gptq"), Relation.QUANTIZED),
        ({"base_model": ["org/a", "org/b"]}, None, Relation.MERGE),
        ({"base_model": "org/a", "base_model_relation": "bogus"}, None, Relation.FINETUNE),
    ],
)
def test_relation_is_inferred_when_not_declared(card: dict, evidence: FileEvidence | None, relation: Relation) -> None:  # type: ignore[type-arg]
    (edge, *_) = card_edges(ROOT, card, evidence)
    assert edge.relation is relation


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"job": "lora", "inputs": {"base_models": ["org/a@sha1"], "datasets": ["org/d"]}},
            {("org/a", Relation.ADAPTER), ("org/d", Relation.TRAINING)},
        ),
        ({"job": "quantize", "inputs": {"base_model": "org/a"}}, {("org/a", Relation.QUANTIZED)}),
        (
            {"job": "merge", "inputs": {"base_models": [{"repo": "org/a"}, "org/b"]}},
            {("org/a", Relation.MERGE), ("org/b", Relation.MERGE)},
        ),
        (
            {"job": "distill", "inputs": {"base_models": ["org/s"], "teachers": ["org/t"]}},
            {("org/s", Relation.FINETUNE), ("org/t", Relation.DISTILLATION)},
        ),
        ({"job": "lora", "relation": "finetune", "inputs": {"base_models": ["org/a"]}}, {("org/a", Relation.FINETUNE)}),
        ({"base_model": ["org/a", "org/b"]}, {("org/a", Relation.MERGE), ("org/b", Relation.MERGE)}),
        (None, set()),
    ],
)
def test_provenance_edges(record: dict | None, expected: set[tuple[str, Relation]]) -> None:  # type: ignore[type-arg]
    edges = provenance_edges(ROOT, record)
    assert {(e.parent.repo_id, e.relation) for e in edges} == expected
    assert all(e.status is EdgeStatus.VERIFIED and e.sources == (EdgeSource.RECORDED,) for e in edges)


def test_provenance_pins_revisions_and_matches_unpinned_cards() -> None:
    facts = M(
        "acme/child",
        "apache-2.0",
        base="org/a",
        provenance={"job": "finetune", "inputs": {"base_models": ["org/a@cafe"]}},
    )
    (edge,) = build_lineage([facts]).parents(facts.ref)
    assert edge.parent == RepoRef(RepoKind.MODEL, "org/a", "cafe")
    assert edge.sources == (EdgeSource.DECLARED, EdgeSource.RECORDED) and edge.status is EdgeStatus.VERIFIED
    # An unpinned node with facts answers for the pinned reference.
    lineage = build_lineage([facts, M("org/a", "mit")])
    node = lineage.node(edge.parent)
    assert node is not None and node.license == "mit"


def test_recorded_inputs_contradict_undeclared_ones() -> None:
    facts = M(
        "acme/child",
        "apache-2.0",
        base="org/claimed",
        data=("org/claimed-data",),
        provenance={"job": "finetune", "inputs": {"base_models": ["org/real"], "eval_datasets": ["org/bench"]}},
    )
    edges = _edges(facts)
    assert edges[model("org/claimed")][1] is EdgeStatus.CONTRADICTED
    assert edges[model("org/real")][1] is EdgeStatus.VERIFIED
    # The record lists no training data, so the declared dataset stays unverified, not contradicted.
    assert edges[dataset("org/claimed-data")][1] is EdgeStatus.UNVERIFIED


def test_evidence_statuses() -> None:
    hashes = FileEvidence(comparisons=(TensorComparison(model("org/a"), True, 10, 10),))
    assert _edges(M("acme/child", base="org/a", evidence=hashes))[model("org/a")][1] is EdgeStatus.VERIFIED
    shapes = FileEvidence(comparisons=(TensorComparison(model("org/a"), False),))
    assert _edges(M("acme/child", base="org/a", evidence=shapes))[model("org/a")][1] is EdgeStatus.CONTRADICTED
    # Quantized tensors are packed: a shape mismatch does not contradict a quantized copy.
    assert (
        _edges(M("acme/child", base="org/a", rel="quantized", evidence=shapes))[model("org/a")][1]
        is EdgeStatus.UNVERIFIED
    )
    only_files = _edges(M("acme/child", evidence=FileEvidence(gguf_base_models=("org/g",))))
    assert only_files[model("org/g")] == (Relation.QUANTIZED, EdgeStatus.VERIFIED, (EdgeSource.EVIDENCE,))


def test_evidence_from_files() -> None:
    ev = evidence_from_files(
        adapter_config={"base_model_name_or_path": "/tmp/job/base"},  # a local path is not evidence
        gguf_metadata={
            "general.base_model.count": 1,
            "general.base_model.0.repo_url": "https://huggingface.co/meta-llama/Llama-3.1-8B",
            "general.file_type": 15,
        },
    )
    assert ev.adapter_base is None
    assert ev.gguf_base_models == ("meta-llama/Llama-3.1-8B",)
    assert ev.quantization == "gguf:15"
    assert evidence_from_files(adapter_config={"base_model_name_or_path": "org/base"}).adapter_base == "org/base"
    assert evidence_from_files(config={"quantization_config": {"quant_method": "awq"}}).quantization == "awq"


def test_gguf_source_is_the_direct_parent() -> None:
    """general.source.* names what was converted; general.base_model.* are that repo's own parents."""
    ev = evidence_from_files(gguf_metadata={
        "general.source.repo_url": "https://huggingface.co/acme/Llama-3.1-tuned",
        "general.base_model.count": 1,
        "general.base_model.0.repo_url": "https://huggingface.co/meta-llama/Llama-3.1-8B",
    })
    assert ev.gguf_sources == ("acme/Llama-3.1-tuned",) and ev.quantization == "gguf"
    edges = _edges(M("acme/child-gguf", evidence=ev))
    assert edges == {model("acme/Llama-3.1-tuned"): (Relation.QUANTIZED, EdgeStatus.VERIFIED, (EdgeSource.EVIDENCE,))}
    declared = _edges(M("acme/child-gguf", base="acme/Llama-3.1-tuned", evidence=ev))
    assert declared[model("acme/Llama-3.1-tuned")][:2] == (Relation.QUANTIZED, EdgeStatus.VERIFIED)
    wrong = _edges(M("acme/child-gguf", base="acme/other", rel="adapter", evidence=ev))
    # only a quantized copy must be what the file was made from
    assert wrong[model("acme/other")][1] is EdgeStatus.UNVERIFIED
    wrong = _edges(M("acme/child-gguf", base="acme/other", rel="quantized", evidence=ev))
    assert wrong[model("acme/other")][1] is EdgeStatus.CONTRADICTED  # the file says what it was converted from


def test_referenced_repos_tell_the_caller_what_to_load_next() -> None:
    facts = M(
        "acme/child", base="org/a", data=("org/d",), outputs=("org/t",), evidence=FileEvidence(adapter_base="org/b")
    )
    assert referenced_repos(facts) == (dataset("org/d"), model("org/a"), model("org/b"), model("org/t"))


def test_node_from_card() -> None:
    node = node_from_facts(
        M(
            "acme/x",
            license=["mit", "apache-2.0"],
            gated=True,
            extra_gated_eu_disallowed=True,
            pipeline_tag="image-text-to-text",
        )
    )
    assert node.license == "mit" and node.card_issues
    assert node.gated_terms and node.eu_disallowed and node.multimodal


def test_lineage_keeps_unknown_parents_by_id_and_walks_channels() -> None:
    facts = [
        M("acme/child", "mit", base="acme/mid", data=("org/d",)),
        M("acme/mid", "mit", base="external/far", outputs=("org/teacher",)),
    ]
    lineage = build_lineage(facts)
    far = lineage.node(model("external/far"))
    assert far is not None and not far.known and not far.hosted
    channels = {a.node_ref.repo_id: a.channel for a in walk(lineage, model("acme/child")).ancestors}
    assert channels == {
        "acme/mid": Channel.ADAPTATION,
        "external/far": Channel.ADAPTATION,
        "org/d": Channel.TRAINING_DATA,
        "org/teacher": Channel.OUTPUTS,
    }


def test_lineage_of_is_canonical() -> None:
    a, b = RepoNode(model("x/a"), license="mit"), RepoNode(model("x/b"))
    assert Lineage.of([a, b]) == Lineage.of([b, a])
    # A node with facts wins over a placeholder for the same ref.
    assert Lineage.of([RepoNode(model("x/a"), known=False), a]).node(model("x/a")) == a


SHA_BASE, SHA_DATA = "a" * 40, "b" * 40


def _finetune_record(merge: bool) -> dict:  # type: ignore[type-arg]
    # The shape `commons.ml.finetune` writes to provenance.json (job metadata, spec, pinned inputs).
    return {
        "provenance_version": 1,
        "tool": "commons finetune",
        "job": {"id": 7},
        "spec": {"kind": "finetune", "recipe": {"rank": 8, "merge": merge}},
        "inputs": {
            "base": {"repo_id": "org/base", "revision": SHA_BASE},
            "dataset": {"repo_id": "org/data", "revision": SHA_DATA},
        },
    }


def test_commons_finetune_provenance() -> None:
    adapter = {(e.parent, e.relation) for e in provenance_edges(ROOT, _finetune_record(merge=False))}
    assert adapter == {
        (RepoRef(RepoKind.MODEL, "org/base", SHA_BASE), Relation.ADAPTER),
        (RepoRef(RepoKind.DATASET, "org/data", SHA_DATA), Relation.TRAINING),
    }
    merged = {
        e.relation for e in provenance_edges(ROOT, _finetune_record(merge=True)) if e.parent.repo_id == "org/base"
    }
    assert merged == {Relation.FINETUNE}
    # The card the job writes agrees, so the edges are declared and recorded, and verified.
    card = {"base_model": "org/base", "base_model_relation": "adapter", "datasets": ["org/data"], "license": "mit"}
    lineage = build_lineage([RepoFacts(ROOT, card=card, provenance=_finetune_record(merge=False))])
    assert {(e.status, e.sources) for e in lineage.parents(ROOT)} == {
        (EdgeStatus.VERIFIED, (EdgeSource.DECLARED, EdgeSource.RECORDED))
    }


def test_card_lineage_fields_round_trip_through_the_card_parser() -> None:
    from commons.policy import card_lineage_fields

    fields = card_lineage_fields(
        base_models=["org/a"], relation=Relation.ADAPTER, datasets=["org/d"], trained_on_outputs_of=["org/t", "org/t"]
    )
    assert fields == {
        "base_model": "org/a",
        "base_model_relation": "adapter",
        "datasets": ["org/d"],
        "trained_on_outputs_of": ["org/t"],
    }
    assert {(e.parent.repo_id, e.relation) for e in card_edges(ROOT, fields)} == {
        ("org/a", Relation.ADAPTER),
        ("org/d", Relation.TRAINING),
        ("org/t", Relation.DISTILLATION),
    }
    assert card_lineage_fields(base_models=["org/a", "org/b"])["base_model"] == ["org/a", "org/b"]
