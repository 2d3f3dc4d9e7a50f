"""The policy room: license facts, lineage, obligation propagation, notices and openness, as pure functions.

Frozen facts go in, a `Decision` with reasons comes out. No database, files, clock or network here:
callers gather facts (cards, provenance, file evidence) and pass them in. The one read is the packaged
license and MOF data (`data/*.yaml`, via importlib.resources).

Entry points for the surfaces (API, CLI, web panel, commit hook, jobs):

    lineage = build_lineage([RepoFacts(ref, card=..., provenance=..., evidence=...), ...])
    decision = evaluate(lineage, ref, mode=Mode.STRICT)           # verdict, terms, obligations, conflicts
    answer = ask(lineage, ref, Question.MONTHLY_USERS, monthly_active_users=800_000_000)
    notice = notice_text(decision)                                 # the NOTICE a derivative must carry
    fields = suggest_license(decision).card_fields()               # {"license": ..., "license_name": ...}
    report = classify_openness(RepoContents(ref, files, card), lineage, decision)
    json_data = to_jsonable(decision)

Card metadata field for distillation and synthetic data: `trained_on_outputs_of: [model ids]` on model
cards and `generated_by: [model ids]` on dataset cards (see `commons.policy.lineage`).
"""

from __future__ import annotations

from commons.policy.evidence import FileEvidence, TensorComparison, evidence_from_files
from commons.policy.facts import (
    Channel,
    Edge,
    EdgeKind,
    EdgeSource,
    EdgeStatus,
    Lineage,
    Mode,
    Relation,
    RepoKind,
    RepoNode,
    RepoRef,
    dataset,
    model,
)
from commons.policy.licenses import (
    KnowledgeBase,
    LicenseResolution,
    identify_license_text,
    load_knowledge_base,
    resolve_license,
)
from commons.policy.lineage import (
    GENERATED_BY_FIELD,
    PROVENANCE_SCHEMA,
    TRAINED_ON_OUTPUTS_FIELD,
    RepoFacts,
    build_lineage,
    card_lineage_fields,
    referenced_repos,
)
from commons.policy.notices import LicenseSuggestion, notice_text, suggest_license
from commons.policy.openness import OpennessReport, RepoContents, classify_openness
from commons.policy.propagation import evaluate
from commons.policy.questions import answer, ask
from commons.policy.terms import LicenseTerms, Tri
from commons.policy.verdicts import (
    Answer,
    AnswerValue,
    Conflict,
    ConflictCode,
    Decision,
    EffectiveTerms,
    Obligation,
    ObligationKind,
    Question,
    Reason,
    Severity,
    Verdict,
    to_jsonable,
)
from commons.policy.version import ENGINE_VERSION

__all__ = [
    "ENGINE_VERSION",
    "GENERATED_BY_FIELD",
    "PROVENANCE_SCHEMA",
    "TRAINED_ON_OUTPUTS_FIELD",
    "Answer",
    "AnswerValue",
    "Channel",
    "Conflict",
    "ConflictCode",
    "Decision",
    "Edge",
    "EdgeKind",
    "EdgeSource",
    "EdgeStatus",
    "EffectiveTerms",
    "FileEvidence",
    "KnowledgeBase",
    "LicenseResolution",
    "LicenseSuggestion",
    "LicenseTerms",
    "Lineage",
    "Mode",
    "Obligation",
    "ObligationKind",
    "OpennessReport",
    "Question",
    "Reason",
    "Relation",
    "RepoContents",
    "RepoFacts",
    "RepoKind",
    "RepoNode",
    "RepoRef",
    "Severity",
    "TensorComparison",
    "Tri",
    "Verdict",
    "answer",
    "ask",
    "build_lineage",
    "card_lineage_fields",
    "classify_openness",
    "dataset",
    "evaluate",
    "evidence_from_files",
    "identify_license_text",
    "load_knowledge_base",
    "model",
    "notice_text",
    "referenced_repos",
    "resolve_license",
    "suggest_license",
    "to_jsonable",
]
