"""Openness: the Model Openness Framework class of a model, from its files, card and lineage.

The MOF (LF AI & Data) lists 17 components in three cumulative classes: Class III (Open Model),
Class II (Open Tooling), Class I (Open Science). A component counts only if its license is open
(OSI-approved, FSF-libre, on the open-data list, or OpenMDW); an open license that is not
type-appropriate counts with a warning; unlicensed or non-open components do not count. The rules
and lists are data (`data/mof.yaml`, copied from the Model Openness Tool); the presence of each
component is read from the repo with the heuristics of licenses.md §4.

Component licenses resolve as in the MOT: a component-specific license, then a license for the
content type, then the distribution license (the card's `license`). Cards may state them with two
Commons card fields (ignored by the Hub):

* ``mof_components: {<component key>: <license> | {license: ..., url: ...}}`` — declares a component
  (e.g. ``training_code: {license: apache-2.0, url: https://github.com/…}``) and its license;
* ``mof_licenses: {code: ..., data: ..., document: ...}`` — licenses per content type.

Component keys are those in `data/mof.yaml` (`model_architecture`, `training_code`, `datasets` …).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml

from commons.policy.facts import Channel, Lineage, Relation, RepoKind, RepoRef
from commons.policy.licenses import KnowledgeBase, load_knowledge_base, resolve_license
from commons.policy.terms import LicenseTerms, Tri
from commons.policy.verdicts import Decision, ObligationKind
from commons.policy.version import ENGINE_VERSION


class ComponentStatus(StrEnum):
    INCLUDED = "included"
    INCLUDED_NOT_TYPE_APPROPRIATE = "included_not_type_appropriate"
    NOT_OPEN = "not_open"  # present under a license that is not open
    UNLICENSED = "unlicensed"
    MISSING = "missing"

    @property
    def counts(self) -> bool:
        return self in (ComponentStatus.INCLUDED, ComponentStatus.INCLUDED_NOT_TYPE_APPROPRIATE)


@dataclass(frozen=True)
class Component:
    key: str
    name: str
    content_type: str  # code | data | document
    mof_class: int
    required: bool
    mot_id: int


@dataclass(frozen=True)
class MofRules:
    components: tuple[Component, ...]
    class_names: tuple[tuple[int, str], ...]
    open_data: frozenset[str]
    open_licenses: frozenset[str]
    type_appropriate: tuple[tuple[str, frozenset[str]], ...]
    source: str

    def component(self, key: str) -> Component:
        return next(c for c in self.components if c.key == key)

    def class_name(self, mof_class: int) -> str:
        return dict(self.class_names).get(mof_class, "Unclassified")

    def is_type_appropriate(self, spdx: str, content_type: str) -> bool:
        return spdx in dict(self.type_appropriate).get(content_type, frozenset())


@cache
def load_mof_rules() -> MofRules:
    """The packaged MOF rules (read once; package data, not user files)."""
    text = resources.files("commons.policy").joinpath("data/mof.yaml").read_text(encoding="utf-8")
    return parse_mof_rules(text)


def parse_mof_rules(text: str) -> MofRules:
    data = yaml.safe_load(text)
    components = tuple(
        Component(c["key"], c["name"], c["type"], int(c["class"]), bool(c["required"]), int(c["mot_id"]))
        for c in data["components"]
    )
    return MofRules(
        components=components,
        class_names=tuple(sorted((int(k), str(v)) for k, v in data["class_names"].items())),
        open_data=frozenset(data["open_data_licenses"]),
        open_licenses=frozenset(data["open_licenses"]),
        type_appropriate=tuple(sorted((k, frozenset(v)) for k, v in data["type_appropriate"].items())),
        source=str(data["source"]),
    )


@dataclass(frozen=True)
class RepoContents:
    """What the openness classifier looks at: the repo's files, its card, and a few recorded facts."""

    ref: RepoRef
    files: tuple[str, ...]
    card: Mapping[str, Any]
    revisions: tuple[str, ...] = ()  # branch and tag names; more than one suggests intermediate checkpoints
    produced_by_commons_job: bool = False  # a Commons job trained it: its training code is Commons (Apache-2.0)
    evaluated_by_commons: bool = False  # a Commons evaluation job scored it: its eval code is Commons


@dataclass(frozen=True)
class ComponentResult:
    component: Component
    status: ComponentStatus
    license: str | None  # SPDX id (or the license as written when it has none)
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class OpennessReport:
    repo: RepoRef
    mof_class: int  # 3, 2 or 1; 0 when not even Class III is met
    class_label: str
    progress: tuple[tuple[int, float], ...]  # (class, percent of its required components included)
    components: tuple[ComponentResult, ...]
    osaid: str  # "likely conforms" | "does not conform"
    osaid_reasons: tuple[str, ...]
    notes: tuple[str, ...]
    engine_version: str

    def result(self, key: str) -> ComponentResult:
        return next(r for r in self.components if r.component.key == key)


_WEIGHTS = re.compile(
    r"\.(safetensors|gguf|pt|pth|ckpt|onnx|h5|msgpack|npz)$|(^|/)(pytorch_model|model|tf_model|flax_model)[^/]*\.bin$"
)
_NOT_WEIGHTS = re.compile(r"(^|/)(training_args\.bin|optimizer\.pt|scheduler\.pt|rng_state[^/]*\.pth)$")
_CHECKPOINT_DIR = re.compile(r"(^|/)(checkpoint|ckpt|step)[-_]?\d+/")
_PATTERNS = {
    "training_code": re.compile(
        r"(^|/)(train|finetune|fine_tune|pretrain|sft)[^/]*\.(py|sh|ipynb)$|(^|/)training/[^/]+\.py$"
    ),
    "inference_code": re.compile(r"(^|/)(inference|infer|generate|predict|serve|chat|run|demo)[^/]*\.(py|ipynb)$"),
    "evaluation_code": re.compile(
        r"(^|/)(eval|evaluate|evaluation|benchmark)[^/]*\.(py|sh|ipynb)$|(^|/)evaluation/[^/]+\.py$"
    ),
    "data_preprocessing_code": re.compile(
        r"(^|/)(preprocess|prepare|prep|tokeni[sz]e|clean|dedup|filter)[^/]*\.(py|sh|ipynb)$"
    ),
    "technical_report": re.compile(r"(^|/)[^/]*(report|tech[-_]?report)[^/]*\.(pdf|md)$", re.IGNORECASE),
    "sample_model_outputs": re.compile(r"(^|/)(samples?|outputs?|examples?)/"),
    "model_metadata": re.compile(
        r"(^|/)(training_args\.bin|trainer_state\.json|optimizer\.pt|training_config\.[a-z]+|hparams\.[a-z]+)$"
    ),
    "supporting_libraries": re.compile(r"(^|/)(requirements[^/]*\.txt|pyproject\.toml|environment\.ya?ml|setup\.py)$"),
}
# Implementations outside the repo that the Hub's own tooling relies on, with their licenses.
_LIBRARY_CODE = {
    "transformers": ("Apache-2.0", "implemented in the transformers library"),
    "gguf": ("MIT", "runs in llama.cpp"),
}


def classify_openness(
    contents: RepoContents,
    lineage: Lineage | None = None,
    decision: Decision | None = None,
    *,
    kb: KnowledgeBase | None = None,
    rules: MofRules | None = None,
) -> OpennessReport:
    """The MOF class of a model with each component's status, license and reasons."""
    kb = kb or load_knowledge_base()
    rules = rules or load_mof_rules()
    card = contents.card
    distribution = _spdx(card.get("license"), card.get("license_name"), kb)
    per_type = _mapping(card.get("mof_licenses"))
    overrides = _mapping(card.get("mof_components"))
    found = _detect(contents, lineage, kb)
    notes: list[str] = []
    results: list[ComponentResult] = []
    for comp in rules.components:
        override = overrides.get(comp.key)
        if override is not None:
            lic = override.get("license") if isinstance(override, Mapping) else override
            spdx = _spdx(lic, None, kb) if lic else None
            where = override.get("url") if isinstance(override, Mapping) else None
            detected: tuple[bool, str | None, str] | None = (
                True,
                spdx,
                f"declared in mof_components{f' ({where})' if where else ''}",
            )
        else:
            detected = found.get(comp.key)
        if detected is None or not detected[0]:
            why = detected[2] if detected else "not found in the repo, its card or its lineage"
            results.append(ComponentResult(comp, ComponentStatus.MISSING, None, (why,)))
            continue
        _, specific, why = detected
        type_license = _spdx(per_type.get(comp.content_type), None, kb) if per_type.get(comp.content_type) else None
        # "" is a component-specific "unlicensed" (a dataset without a license is not covered by the
        # model's license); None means "fall back to the type license, then the distribution license".
        lic = (specific if specific is not None else (type_license or distribution)) or None
        status, lic_why = _license_status(lic, comp, rules, kb)
        results.append(ComponentResult(comp, status, lic, (why, lic_why)))
    results = _apply_lineage_terms(results, decision)
    results = _paper_stands_for_report(results)
    progress, mof_class = _classify(results)
    osaid, osaid_reasons = _osaid(results, decision, kb)
    if any(r.component.key == "datasets" and r.status is ComponentStatus.UNLICENSED for r in results):
        notes.append(
            "the MOF paper accepts unlicensed datasets, but the Model Openness Tool does not; Commons follows the tool"
        )
    notes.append(f"rules: {rules.source}")
    return OpennessReport(
        contents.ref,
        mof_class,
        rules.class_name(mof_class),
        progress,
        tuple(results),
        osaid,
        osaid_reasons,
        tuple(notes),
        ENGINE_VERSION,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _spdx(value: Any, license_name: Any, kb: KnowledgeBase) -> str | None:
    if not value:
        return None
    res = resolve_license(str(value), str(license_name) if license_name else None, kb=kb)
    if res.terms.unresolved:
        return str(value) if str(value).casefold() not in ("other", "unknown") else None
    return res.terms.spdx or res.terms.id


def _license_status(
    spdx: str | None, comp: Component, rules: MofRules, kb: KnowledgeBase
) -> tuple[ComponentStatus, str]:
    if not spdx:
        return ComponentStatus.UNLICENSED, "no license applies to it (unlicensed counts as not open)"
    terms = kb.lookup(spdx)
    is_open = (
        spdx in rules.open_data
        or spdx in rules.open_licenses
        or bool(terms and (terms.osi_approved or terms.fsf_libre))
    )
    if not is_open:
        return (
            ComponentStatus.NOT_OPEN,
            f"{spdx} is not an open license (not OSI-approved, FSF-libre, open data or OpenMDW)",
        )
    if rules.is_type_appropriate(spdx, comp.content_type):
        return ComponentStatus.INCLUDED, f"{spdx} is open and appropriate for {comp.content_type}"
    return (
        ComponentStatus.INCLUDED_NOT_TYPE_APPROPRIATE,
        f"{spdx} is open but not type-appropriate for {comp.content_type}",
    )


def _detect(
    contents: RepoContents, lineage: Lineage | None, kb: KnowledgeBase
) -> dict[str, tuple[bool, str | None, str]]:
    """component key -> (present, component-specific license or None, why)."""
    files = [f for f in contents.files if not f.startswith(".git/")]
    card = contents.card
    library = str(card.get("library_name") or "").casefold()
    has_gguf = any(f.endswith(".gguf") for f in files)
    lib = "transformers" if library == "transformers" or "config.json" in files else ("gguf" if has_gguf else None)
    out: dict[str, tuple[bool, str | None, str]] = {}

    def first(pattern: re.Pattern[str]) -> str | None:
        return next((f for f in files if pattern.search(f)), None)

    py = [f for f in files if f.endswith(".py") and not any(p.search(f) for p in _PATTERNS.values())]
    if py:
        out["model_architecture"] = (True, None, f"modeling code in the repo ({py[0]})")
    elif lib:
        spdx, why = _LIBRARY_CODE[lib]
        out["model_architecture"] = (True, spdx, why)
    weights = [f for f in files if _WEIGHTS.search(f) and not _NOT_WEIGHTS.search(f)]
    if weights:
        out["model_parameters"] = (True, None, f"weights in the repo ({weights[0]})")
    if "README.md" in files:
        out["model_card"] = (True, None, "README.md")
    for key in (
        "training_code",
        "inference_code",
        "evaluation_code",
        "data_preprocessing_code",
        "technical_report",
        "sample_model_outputs",
        "model_metadata",
        "supporting_libraries",
    ):
        hit = first(_PATTERNS[key])
        if hit:
            out[key] = (True, None, f"{hit} in the repo")
    if "inference_code" not in out and lib:
        spdx, why = _LIBRARY_CODE[lib]
        out["inference_code"] = (True, spdx, why)
    if "supporting_libraries" not in out and lib:
        spdx, why = _LIBRARY_CODE[lib]
        out["supporting_libraries"] = (True, spdx, why)
    if contents.produced_by_commons_job:
        out.setdefault("training_code", (True, "Apache-2.0", "trained by a Commons job (Commons is Apache-2.0)"))
        out.setdefault("model_metadata", (True, None, "training configuration recorded in the job's provenance"))
    if contents.evaluated_by_commons:
        out.setdefault("evaluation_code", (True, "Apache-2.0", "evaluated by a Commons job (Commons is Apache-2.0)"))
    if card.get("model-index") or any(f.startswith(".eval_results/") for f in files):
        out["evaluation_results"] = (True, None, "model-index / .eval_results in the card")
    if any(str(t).startswith("arxiv:") for t in (card.get("tags") or [])):
        out["research_paper"] = (True, None, "arxiv tag on the card")
    if len(contents.revisions) > 1 or first(_CHECKPOINT_DIR):
        out["intermediate_checkpoints"] = (True, None, "several revisions or checkpoint folders")
    out.update(_lineage_components(contents, lineage, kb))
    if "data_card" not in out and (card.get("datasets") or "training data" in str(card).casefold()):
        out["data_card"] = (True, None, "training data described in the model card")
    return out


def _lineage_components(
    contents: RepoContents, lineage: Lineage | None, kb: KnowledgeBase
) -> dict[str, tuple[bool, str | None, str]]:
    if lineage is None:
        return {}
    out: dict[str, tuple[bool, str | None, str]] = {}
    edges = [e for e in lineage.parents(contents.ref) if e.propagates or e.relation is Relation.EVALUATION]
    for key, relation in (("datasets", Relation.TRAINING), ("evaluation_data", Relation.EVALUATION)):
        refs = [e.parent for e in edges if e.relation is relation and e.parent.kind is RepoKind.DATASET]
        if not refs:
            continue
        licenses = []
        for ref in refs:
            node = lineage.node(ref)
            licenses.append(_spdx(node.license, node.license_name, kb) if node else None)
        worst = _least_open(licenses, kb)
        out[key] = (True, worst, f"{len(refs)} dataset(s) in the lineage: " + ", ".join(str(r) for r in refs))
        # The datasets' own cards are the data card when they are known and licensed; otherwise the
        # model card may hold it (MOT: a data card may be folded into the model card).
        if key == "datasets" and worst and all((n := lineage.node(r)) is not None and n.known for r in refs):
            out["data_card"] = (True, worst, "the training datasets' cards")
    return out


def _least_open(licenses: Sequence[str | None], kb: KnowledgeBase) -> str:
    # One unlicensed or non-open dataset makes the whole component not open ("" = unlicensed).
    if any(lic is None for lic in licenses):
        return ""
    ranked = sorted((s for s in licenses if s), key=lambda s: (_openness_rank(s, kb), s))
    return ranked[0] if ranked else ""


def _openness_rank(spdx: str | None, kb: KnowledgeBase) -> int:
    terms: LicenseTerms | None = kb.lookup(spdx) if spdx else None
    if terms is None:
        return 0
    return 1 + terms.permissions.commercial_use.value.rank + terms.permissions.derivatives.value.rank


def _apply_lineage_terms(results: list[ComponentResult], decision: Decision | None) -> list[ComponentResult]:
    """Weights that inherit use restrictions, non-commercial or no-derivatives terms are not open."""
    if decision is None:
        return results
    limiting = (ObligationKind.USE_RESTRICTIONS, ObligationKind.NON_COMMERCIAL, ObligationKind.NO_DERIVATIVES)
    inherited = sorted(
        {
            r.license_id
            for o in decision.obligations
            if o.binding and o.kind in limiting
            for r in o.reasons
            if r.channel is not Channel.SELF
        }
    )
    if not inherited:
        return results
    out = []
    for r in results:
        if r.component.key == "model_parameters" and r.status.counts:
            why = f"the weights inherit terms that are not open from their lineage: {', '.join(inherited)}"
            out.append(ComponentResult(r.component, ComponentStatus.NOT_OPEN, r.license, (*r.reasons, why)))
        else:
            out.append(r)
    return out


def _paper_stands_for_report(results: list[ComponentResult]) -> list[ComponentResult]:
    # MOT: the technical report may be omitted when the research paper is included.
    paper = next(r for r in results if r.component.key == "research_paper")
    out = []
    for r in results:
        if r.component.key == "technical_report" and not r.status.counts and paper.status.counts:
            out.append(
                ComponentResult(
                    r.component, paper.status, paper.license, ("the research paper stands in for the technical report",)
                )
            )
        else:
            out.append(r)
    return out


def _classify(results: Sequence[ComponentResult]) -> tuple[tuple[tuple[int, float], ...], int]:
    progress = []
    met = 0
    for cls in (3, 2, 1):
        required = [r for r in results if r.component.required and r.component.mof_class >= cls]
        included = sum(1 for r in required if r.status.counts)
        progress.append((cls, round(100.0 * included / len(required), 1)))
        # Classes are cumulative: a class counts only when every class above it is met too.
        if included == len(required) and (cls == 3 or met == cls + 1):
            met = cls
    return tuple(progress), met


def _osaid(
    results: Sequence[ComponentResult], decision: Decision | None, kb: KnowledgeBase
) -> tuple[str, tuple[str, ...]]:
    """OSI Open Source AI Definition 1.0, estimated: OSI-approved parameters and code, data information."""
    by_key = {r.component.key: r for r in results}
    problems: list[str] = []
    params = by_key["model_parameters"]
    terms = kb.lookup(params.license) if params.license else None
    if not params.status.counts or terms is None or not terms.osi_approved:
        problems.append(f"parameters are not under OSI-approved terms ({params.license or 'unlicensed'})")
    for key in ("model_architecture", "training_code", "inference_code", "evaluation_code", "data_preprocessing_code"):
        r = by_key[key]
        if not r.status.counts:
            problems.append(f"{r.component.name.lower()} is {r.status.value.replace('_', ' ')}")
    if not any(by_key[k].status.counts for k in ("data_card", "research_paper", "technical_report")):
        problems.append("no data information (data card, paper or technical report)")
    if decision is not None and decision.terms.commercial_use.value is Tri.NO:
        problems.append("inherits a non-commercial limit (OSAID requires use for any purpose)")
    if problems:
        return "does not conform", tuple(problems)
    return "likely conforms", ("OSI-approved parameters and code, and data information are present",)
