"""Lineage: build the graph from cards, job provenance and file evidence; walk a repo's ancestry.

Edges come from three places, kept apart and reconciled per child and parent:

* **declared** — the card: `base_model` (+ `base_model_relation`), `datasets`, `source_datasets`
  (dataset cards), `model-index` eval datasets, and the Commons extensions below;
* **recorded** — the provenance record a Commons job wrote for the revision (see `PROVENANCE_SCHEMA`);
* **evidence** — the files: PEFT `adapter_config.json`, GGUF metadata, quantization configs, and
  tensor shapes / hashes compared against the claimed parent (`FileEvidence`).

Recorded facts win: an edge a job recorded is verified; a declared edge that the record does not
contain (when the record lists that kind of input) is contradicted, shown, and carries no terms.
Declared edges that file evidence confirms are verified, those it contradicts are contradicted, and
the rest stay unverified (they still propagate: the card is the best fact there is).

Card metadata fields added by Commons (the Hub ignores unknown keys):

* ``trained_on_outputs_of: [repo ids]`` on a **model** card: models whose outputs trained this model
  (distillation, synthetic data, RLAIF judges). Entries may be ``{id: ..., relation: distillation |
  synthetic_data}``. Gemma, RAIL and DeepSeek count such a model as a derivative; Llama 3.1+ requires
  the "Llama" name prefix; Llama 2/3.0 and Tongyi Qianwen forbid it for other LLMs.
* ``generated_by: [repo ids]`` on a **dataset** card (as licenses.md §7 proposes): the models that
  generated the data. A model trained on the dataset inherits the generators' outputs rules.

Both names are accepted on both kinds of card. Jobs record the same facts in provenance under
``inputs.trained_on_outputs_of``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from commons.policy.evidence import FileEvidence
from commons.policy.facts import (
    Edge,
    EdgeKind,
    EdgeSource,
    EdgeStatus,
    Lineage,
    Relation,
    RepoKind,
    RepoNode,
    RepoRef,
)

TRAINED_ON_OUTPUTS_FIELD = "trained_on_outputs_of"
GENERATED_BY_FIELD = "generated_by"

PROVENANCE_SCHEMA = """\
A provenance record (what a Commons job writes next to its outputs, provenance.json) is a mapping:
  job:       finetune | sft | lora | qlora | adapter | quantize | convert | export | merge | distill | generate
             (or a mapping of job metadata; then spec.kind names the job)
  relation:  optional, overrides the relation implied by the job (finetune|adapter|quantized|merge)
  spec:      optional job spec; a `finetune` spec with recipe.merge false published an adapter
  inputs:
    base_models:            [repo id | "repo@sha" | {repo_id, revision}]   (also: base_model, base)
    datasets:               [...]  (training data; for `generate`, the seed data; also: dataset)
    trained_on_outputs_of:  [...]  (teachers, generators, judges; also: teachers, generated_by)
    eval_datasets:          [...]
"""

_JOB_RELATION = {
    "finetune": Relation.FINETUNE,
    "full_finetune": Relation.FINETUNE,
    "sft": Relation.FINETUNE,
    "dpo": Relation.FINETUNE,
    "train": Relation.FINETUNE,
    "distill": Relation.FINETUNE,
    "lora": Relation.ADAPTER,
    "qlora": Relation.ADAPTER,
    "adapter": Relation.ADAPTER,
    "peft": Relation.ADAPTER,
    "quantize": Relation.QUANTIZED,
    "convert": Relation.QUANTIZED,
    "export": Relation.QUANTIZED,
    "gguf": Relation.QUANTIZED,
    "merge": Relation.MERGE,
}
_BASE_RELATIONS = {r.value: r for r in (Relation.FINETUNE, Relation.ADAPTER, Relation.QUANTIZED, Relation.MERGE)}
_MULTIMODAL_PIPELINES = {
    "image-text-to-text",
    "visual-question-answering",
    "image-to-text",
    "video-text-to-text",
    "any-to-any",
}


# --------------------------------------------------------------------------- facts per repo


@dataclass(frozen=True)
class RepoFacts:
    """Everything a caller gathered about one repo at one revision (inputs to `build_lineage`)."""

    ref: RepoRef
    card: Mapping[str, Any] | None = None  # README front matter
    provenance: Mapping[str, Any] | None = None  # the job record for this revision, if a job made it
    evidence: FileEvidence | None = None
    license_file: str | None = None  # `licenses.identify_license_text(LICENSE)`
    hosted: bool = True
    files: tuple[str, ...] | None = None
    notice_text: str | None = None
    readme_text: str | None = None


def parse_ref(kind: RepoKind, value: Any) -> RepoRef | None:
    """A repo reference from a card or provenance value: "org/name", "org/name@sha", a URL or a mapping."""
    revision = ""
    if isinstance(value, Mapping):
        revision = str(value.get("revision") or value.get("sha") or "")
        if value.get("repo_type") in ("model", "dataset"):
            kind = RepoKind(value["repo_type"])
        value = value.get("repo") or value.get("id") or value.get("repo_id")
    if not isinstance(value, str) or not value.strip():
        return None
    text = re.sub(r"^https?://[^/]+/", "", value.strip())
    if text.startswith("datasets/"):
        kind, text = RepoKind.DATASET, text.removeprefix("datasets/")
    if "@" in text and not revision:
        text, revision = text.split("@", 1)
    return RepoRef(kind, text.strip("/"), revision.strip())


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _refs(kind: RepoKind, value: Any) -> list[RepoRef]:
    return [r for r in (parse_ref(kind, v) for v in _values(value)) if r is not None]


def node_from_facts(facts: RepoFacts) -> RepoNode:
    """The node for a repo: license fields, gating and file facts from its card."""
    card = facts.card or {}
    issues: list[str] = []
    license_value = card.get("license")
    if isinstance(license_value, list):
        issues.append(f"`license` is a list {license_value!r}; the first entry is used")
        license_value = license_value[0] if license_value else None
    pipeline = str(card.get("pipeline_tag") or "")
    tags = {str(t).casefold() for t in _values(card.get("tags"))}
    return RepoNode(
        ref=facts.ref,
        license=str(license_value) if license_value else None,
        license_name=str(card["license_name"]) if card.get("license_name") else None,
        license_link=str(card["license_link"]) if card.get("license_link") else None,
        license_file=facts.license_file,
        known=True,
        hosted=facts.hosted,
        gated_terms=bool(card.get("extra_gated_prompt") or card.get("extra_gated_fields")),
        eu_disallowed=bool(card.get("extra_gated_eu_disallowed")),
        multimodal=pipeline in _MULTIMODAL_PIPELINES or bool(tags & {"multimodal", "vision", "image-text-to-text"}),
        files=facts.files,
        notice_text=facts.notice_text,
        readme_text=facts.readme_text,
        card_issues=tuple(issues),
    )


def card_edges(ref: RepoRef, card: Mapping[str, Any] | None, evidence: FileEvidence | None = None) -> tuple[Edge, ...]:
    """The edges a card declares. A missing `base_model_relation` is inferred, as the Hub does."""
    if not card:
        return ()
    edges: list[Edge] = []
    bases = _refs(RepoKind.MODEL, card.get("base_model"))
    declared_rel = str(card.get("base_model_relation") or "").strip().casefold()
    note: tuple[str, ...]
    if declared_rel in _BASE_RELATIONS:
        relation, note = _BASE_RELATIONS[declared_rel], ()
    else:
        relation, why = _infer_relation(len(bases), evidence)
        note = (f"relation not declared; inferred as {relation.value} ({why})",)
    edges += [Edge(ref, b, relation, (EdgeSource.DECLARED,), notes=note) for b in bases]
    if ref.kind is RepoKind.MODEL:
        edges += [Edge(ref, d, Relation.TRAINING) for d in _refs(RepoKind.DATASET, card.get("datasets"))]
        edges += [Edge(ref, d, Relation.EVALUATION) for d in _eval_datasets(card.get("model-index"))]
    else:
        sources = [_source_dataset(v) for v in _values(card.get("source_datasets"))]
        edges += [Edge(ref, d, Relation.SOURCE) for d in _refs(RepoKind.DATASET, [s for s in sources if s])]
    for key in (TRAINED_ON_OUTPUTS_FIELD, GENERATED_BY_FIELD):
        for value in _values(card.get(key)):
            default = Relation.SYNTHETIC_DATA if ref.kind is RepoKind.DATASET else Relation.DISTILLATION
            rel = _outputs_relation(value, default)
            parent = parse_ref(RepoKind.MODEL, value)
            if parent is not None:
                edges.append(Edge(ref, parent, rel))
    return tuple(edges)


def card_lineage_fields(
    *,
    base_models: Iterable[str] = (),
    relation: Relation | None = None,
    datasets: Iterable[str] = (),
    trained_on_outputs_of: Iterable[str] = (),
    generated_by: Iterable[str] = (),
) -> dict[str, Any]:
    """Card front-matter fields that declare a repo's lineage (for jobs that publish a repo).

    Writes the Hub's own fields plus the Commons ones (`trained_on_outputs_of` on models,
    `generated_by` on datasets), so what a job records and what its card declares agree.
    """
    out: dict[str, Any] = {}
    bases = list(dict.fromkeys(base_models))
    if bases:
        out["base_model"] = bases[0] if len(bases) == 1 else bases
        if relation is not None:
            out["base_model_relation"] = relation.value
    for key, values in (
        ("datasets", datasets),
        (TRAINED_ON_OUTPUTS_FIELD, trained_on_outputs_of),
        (GENERATED_BY_FIELD, generated_by),
    ):
        items = list(dict.fromkeys(values))
        if items:
            out[key] = items
    return out


def _infer_relation(n_bases: int, evidence: FileEvidence | None) -> tuple[Relation, str]:
    if evidence and evidence.adapter_base:
        return Relation.ADAPTER, "adapter_config.json present"
    if evidence and (evidence.quantization or evidence.gguf_base_models or evidence.gguf_sources):
        return Relation.QUANTIZED, "quantized weights present"
    if n_bases > 1:
        return Relation.MERGE, "several base models"
    return Relation.FINETUNE, "the Hub's default"


def _outputs_relation(value: Any, default: Relation) -> Relation:
    if isinstance(value, Mapping):
        how = str(value.get("relation") or value.get("how") or "").casefold()
        if how in (Relation.DISTILLATION.value, Relation.SYNTHETIC_DATA.value):
            return Relation(how)
    return default


def _source_dataset(value: Any) -> str | None:
    # Hub dataset cards say `original` or `extended|<dataset id>`.
    if not isinstance(value, str) or value.strip().casefold() == "original":
        return None
    return value.split("|", 1)[1] if "|" in value else value


def _eval_datasets(model_index: Any) -> list[RepoRef]:
    out: list[RepoRef] = []
    for entry in _values(model_index):
        if not isinstance(entry, Mapping):
            continue
        for result in _values(entry.get("results")):
            ds = result.get("dataset") if isinstance(result, Mapping) else None
            if isinstance(ds, Mapping):
                ref = parse_ref(RepoKind.DATASET, ds.get("type") or ds.get("id"))
                if ref is not None and "/" in ref.repo_id:
                    out.append(ref)
    return out


def provenance_edges(ref: RepoRef, record: Mapping[str, Any] | None) -> tuple[Edge, ...]:
    """The edges a Commons job recorded (schema in `PROVENANCE_SCHEMA`)."""
    if not record:
        return ()
    raw_inputs = record.get("inputs")
    inputs: Mapping[str, Any] = raw_inputs if isinstance(raw_inputs, Mapping) else record
    spec = _mapping(record.get("spec"))
    raw_job = record.get("job")
    job = str(raw_job if isinstance(raw_job, str) else spec.get("kind") or "").casefold()
    bases = _refs(RepoKind.MODEL, _first(inputs, "base_models", "base_model", "base"))
    explicit = str(record.get("relation") or "").casefold()
    recipe = _mapping(spec.get("recipe"))
    if explicit in _BASE_RELATIONS:
        relation = _BASE_RELATIONS[explicit]
    elif job == "finetune" and "merge" in recipe:
        # The LoRA fine-tune job publishes the adapter, and the merged weights only when asked to.
        relation = Relation.FINETUNE if recipe["merge"] else Relation.ADAPTER
    elif job in _JOB_RELATION:
        relation = _JOB_RELATION[job]
    else:
        relation = Relation.MERGE if len(bases) > 1 else Relation.FINETUNE
    recorded = (EdgeSource.RECORDED,)
    done = EdgeStatus.VERIFIED
    edges = [Edge(ref, b, relation, recorded, done) for b in bases]
    data_rel = Relation.TRAINING if ref.kind is RepoKind.MODEL else Relation.SOURCE
    edges += [
        Edge(ref, d, data_rel, recorded, done) for d in _refs(RepoKind.DATASET, _first(inputs, "datasets", "dataset"))
    ]
    edges += [
        Edge(ref, d, Relation.EVALUATION, recorded, done) for d in _refs(RepoKind.DATASET, inputs.get("eval_datasets"))
    ]
    out_rel = Relation.SYNTHETIC_DATA if job == "generate" or ref.kind is RepoKind.DATASET else Relation.DISTILLATION
    for key in (TRAINED_ON_OUTPUTS_FIELD, "teachers", GENERATED_BY_FIELD):
        for value in _values(inputs.get(key)):
            parent = parse_ref(RepoKind.MODEL, value)
            if parent is not None:
                edges.append(Edge(ref, parent, _outputs_relation(value, out_rel), recorded, done))
    return tuple(edges)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    return next((mapping[k] for k in keys if mapping.get(k) is not None), None)


def evidence_edges(ref: RepoRef, evidence: FileEvidence | None) -> tuple[Edge, ...]:
    """Parents named by the files themselves (status resolved later, in `build_lineage`)."""
    if evidence is None:
        return ()
    found: dict[RepoRef, Relation] = {}
    if evidence.adapter_base:
        found[RepoRef(RepoKind.MODEL, evidence.adapter_base)] = Relation.ADAPTER
    for rid in evidence.gguf_sources:
        found.setdefault(RepoRef(RepoKind.MODEL, rid), Relation.QUANTIZED)
    # Without a source, the base models are taken as what was quantized; with one, they are its parents.
    for rid in () if evidence.gguf_sources else evidence.gguf_base_models:
        found.setdefault(RepoRef(RepoKind.MODEL, rid), Relation.QUANTIZED)
    for cmp in evidence.comparisons:
        if cmp.shapes_match or cmp.identical_tensors:
            found.setdefault(cmp.parent, Relation.QUANTIZED if evidence.quantization else Relation.FINETUNE)
    return tuple(Edge(ref, parent, rel, (EdgeSource.EVIDENCE,)) for parent, rel in sorted(found.items()))


def referenced_repos(facts: RepoFacts) -> tuple[RepoRef, ...]:
    """Every repo these facts point to: what a caller should load next to complete the graph."""
    edges = [*card_edges(facts.ref, facts.card, facts.evidence), *provenance_edges(facts.ref, facts.provenance)]
    edges += evidence_edges(facts.ref, facts.evidence)
    return tuple(sorted({e.parent for e in edges}))


def build_lineage(facts: Iterable[RepoFacts]) -> Lineage:
    """The lineage graph of all given repos, with each edge's sources and status reconciled."""
    nodes: list[RepoNode] = []
    edges: list[Edge] = []
    for f in facts:
        nodes.append(node_from_facts(f))
        edges += reconcile(
            card_edges(f.ref, f.card, f.evidence),
            provenance_edges(f.ref, f.provenance),
            evidence_edges(f.ref, f.evidence),
            f.evidence,
        )
    return Lineage.of(nodes, edges)


def reconcile(
    declared: Iterable[Edge], recorded: Iterable[Edge], found: Iterable[Edge], evidence: FileEvidence | None = None
) -> tuple[Edge, ...]:
    """Merge one child's declared, recorded and evidence edges; recorded facts win."""
    groups: dict[tuple[str, RepoKind, str], dict[EdgeSource, Edge]] = {}
    recorded_slots: set[str] = set()
    for edge in [*declared, *recorded, *found]:
        key = (_slot(edge), edge.parent.kind, edge.parent.repo_id.casefold())
        for source in edge.sources:
            groups.setdefault(key, {}).setdefault(source, edge)
            if source is EdgeSource.RECORDED:
                recorded_slots.add(key[0])
    out: list[Edge] = []
    for (slot, _, _), by_source in groups.items():
        sources = tuple(sorted(by_source))
        if EdgeSource.RECORDED in by_source:
            rec = by_source[EdgeSource.RECORDED]
            notes = list(rec.notes)
            dec = by_source.get(EdgeSource.DECLARED)
            if dec is not None and dec.relation is not rec.relation and not dec.notes:
                notes.append(f"the card declares {dec.relation.value}; the recorded {rec.relation.value} wins")
            out.append(Edge(rec.child, rec.parent, rec.relation, sources, EdgeStatus.VERIFIED, tuple(notes)))
            continue
        base = by_source.get(EdgeSource.DECLARED) or by_source[EdgeSource.EVIDENCE]
        relation = base.relation
        if EdgeSource.DECLARED in by_source and EdgeSource.EVIDENCE in by_source and base.notes:
            relation = by_source[EdgeSource.EVIDENCE].relation  # the files beat an inferred relation
        notes = list(base.notes)
        if slot in recorded_slots:
            status = EdgeStatus.CONTRADICTED
            notes.append("not among the inputs recorded by the job that produced this revision")
        else:
            status, why = _check_against_evidence(base.parent, relation, evidence)
            if why:
                notes.append(why)
            elif sources == (EdgeSource.EVIDENCE,):
                notes.append("named by the files but not declared on the card")
        out.append(Edge(base.child, base.parent, relation, sources, status, tuple(notes)))
    return tuple(sorted(out))


def _slot(edge: Edge) -> str:
    # A job record that lists training inputs says nothing about evaluation sets, and vice versa.
    return "evaluation" if edge.relation is Relation.EVALUATION else edge.kind.value


def _check_against_evidence(parent: RepoRef, relation: Relation, ev: FileEvidence | None) -> tuple[EdgeStatus, str]:
    if ev is None or relation.edge_kind is not EdgeKind.BASE_MODEL:
        return EdgeStatus.UNVERIFIED, ""
    pid = parent.repo_id.casefold()
    for cmp in ev.comparisons:
        if cmp.parent.repo_id.casefold() != pid:
            continue
        if cmp.identical_tensors:
            return (
                EdgeStatus.VERIFIED,
                f"{cmp.identical_tensors} of {cmp.total_tensors} tensors identical to the parent's",
            )
        if cmp.shapes_match:
            return EdgeStatus.VERIFIED, "tensor shapes match the parent's"
        if cmp.shapes_match is False and relation not in (Relation.QUANTIZED, Relation.ADAPTER):
            return EdgeStatus.CONTRADICTED, "tensor shapes differ from the claimed parent's"
    if ev.adapter_base:
        if ev.adapter_base.casefold() == pid:
            return EdgeStatus.VERIFIED, "adapter_config.json names this base model"
        if relation is Relation.ADAPTER:
            return EdgeStatus.CONTRADICTED, f"adapter_config.json names {ev.adapter_base} as the base model"
    if pid in {b.casefold() for b in ev.gguf_sources}:
        return EdgeStatus.VERIFIED, "GGUF metadata names this repo as the source"
    if ev.gguf_sources and relation is Relation.QUANTIZED:
        return EdgeStatus.CONTRADICTED, f"GGUF metadata names {', '.join(ev.gguf_sources)} as the source"
    if pid in {b.casefold() for b in ev.gguf_base_models}:
        return EdgeStatus.VERIFIED, "GGUF metadata names this base model"
    return EdgeStatus.UNVERIFIED, ""
