"""Output values of the policy room: reasons, obligations, conflicts, effective terms and the Decision.

Every line a user sees carries `Reason`s that name the ancestor (the repo whose license causes it),
the license and the clause, and the knowledge-base source. A `Decision` records the policy mode,
the engine version and the knowledge-base version, so a verdict can be re-derived after a change.

`to_jsonable` turns any of these values into plain JSON data for the API and the CLI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from commons.policy.facts import Channel, Mode, RepoRef
from commons.policy.terms import AllowedDeclarations, Tri


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    REVIEW = "review"  # a human must look (lenient mode's answer to unknown terms)
    CONFLICT = "conflict"  # what the repo declares disagrees with what it inherits; fixable on the card
    BLOCKER = "blocker"  # the repo may not be distributed as it is

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Verdict(StrEnum):
    ALLOWED = "allowed"
    ALLOWED_WITH_WARNINGS = "allowed_with_warnings"
    NEEDS_REVIEW = "needs_review"
    CONFLICT = "conflict"
    BLOCKED = "blocked"

    @classmethod
    def from_severity(cls, severity: Severity | None) -> Verdict:
        return {
            None: cls.ALLOWED,
            Severity.INFO: cls.ALLOWED,
            Severity.WARNING: cls.ALLOWED_WITH_WARNINGS,
            Severity.REVIEW: cls.NEEDS_REVIEW,
            Severity.CONFLICT: cls.CONFLICT,
            Severity.BLOCKER: cls.BLOCKED,
        }[severity]


class ObligationKind(StrEnum):
    LICENSE_COPY = "license_copy"  # ship the license text (value: license id)
    NOTICE_LINE = "notice_line"  # a verbatim line for the NOTICE file
    ATTRIBUTION = "attribution"  # keep notices / attribute the ancestor (value: "<repo> (<license>)")
    DISPLAY_PHRASE = "display_phrase"  # "Built with Llama" …; alternatives joined by " / "
    NAMING_PREFIX = "naming_prefix"  # the model name must start with this
    USE_RESTRICTIONS = "use_restrictions"  # AUP / Attachment A that must be followed (and passed down)
    SHARE_ALIKE = "share_alike"  # copyleft family the derivative must stay in
    MARK_CHANGES = "mark_changes"  # modified files carry change notices
    NON_COMMERCIAL = "non_commercial"  # non-commercial or research-only use
    USER_THRESHOLD = "user_threshold"  # above N monthly users a separate license is needed
    TERRITORIAL = "territorial"  # e.g. no rights for EU-domiciled licensees (multimodal Llama)
    NO_DERIVATIVES = "no_derivatives"  # adapted material may not be shared
    NO_IMPROVE_OTHER_MODELS = "no_improve_other_models"  # outputs may not improve other LLMs
    HOSTING_CONDITION = "hosting_condition"  # what offering it as a service requires
    TERMS_MAY_CHANGE = "terms_may_change"  # the licensor may revoke, restrict or update (a risk flag)


class ConflictCode(StrEnum):
    DECLARED_LICENSE_INCOMPATIBLE = "declared_license_incompatible"
    QUANTIZED_LICENSE_CHANGED = "quantized_license_changed"
    INCOMPATIBLE_INHERITED_TERMS = "incompatible_inherited_terms"
    SHARE_ALIKE_CLASH = "share_alike_clash"
    NO_DERIVATIVES = "no_derivatives"
    UNRESOLVED_LICENSE = "unresolved_license"
    UNVERIFIED_LICENSE_FACTS = "unverified_license_facts"
    FAMILY_TAG = "family_tag"
    DISTILLATION_PROHIBITED = "distillation_prohibited"
    NAMING_PREFIX_MISSING = "naming_prefix_missing"
    NAMING_PREFIX_CLASH = "naming_prefix_clash"
    LICENSE_FILE_MISMATCH = "license_file_mismatch"
    LINEAGE_CONTRADICTED = "lineage_contradicted"
    LINEAGE_UNVERIFIED = "lineage_unverified"
    LINEAGE_VERIFIED = "lineage_verified"
    LINEAGE_CYCLE = "lineage_cycle"
    EXTERNAL_ANCESTOR = "external_ancestor"
    DATASET_TERMS_NOT_APPLIED = "dataset_terms_not_applied"
    MISSING_NOTICE = "missing_notice"
    MISSING_LICENSE_COPY = "missing_license_copy"
    MISSING_DISPLAY_PHRASE = "missing_display_phrase"
    GATING_MISMATCH = "gating_mismatch"
    EU_RESTRICTION = "eu_restriction"
    CARD_ISSUE = "card_issue"


@dataclass(frozen=True, order=True)
class Reason:
    """Why one line holds: the ancestor whose license causes it, the license and the clause.

    `path` is the chain from the repo to the ancestor ("finetune of X", "trained on D"); it is empty
    for the repo's own terms.
    """

    depth: int
    ancestor: RepoRef
    license_id: str
    clause: str
    text: str
    source: str
    channel: Channel = Channel.SELF
    path: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class Obligation:
    """Something a redistributor or user must do. Advisory (`binding=False`) in lenient mode for data."""

    kind: ObligationKind
    value: str
    binding: bool
    reasons: tuple[Reason, ...]

    @property
    def key(self) -> tuple[ObligationKind, str]:
        return (self.kind, self.value)


@dataclass(frozen=True, order=True)
class Conflict:
    severity: Severity
    code: ConflictCode
    message: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Permission:
    """One permission of the effective terms: the most restrictive value over everything inherited."""

    value: Tri
    conditions: tuple[str, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, order=True)
class ThresholdTerm:
    value: int
    metric: str
    licensor: str
    license_id: str
    basis: str
    reason: Reason


@dataclass(frozen=True)
class EffectiveTerms:
    commercial_use: Permission
    derivatives: Permission
    redistribution: Permission
    hosting: Permission
    user_thresholds: tuple[ThresholdTerm, ...] = ()


@dataclass(frozen=True, order=True)
class AncestorSummary:
    """One ancestor as reached from the repo (the first, shortest path), with its resolved license."""

    depth: int
    ref: RepoRef
    channel: Channel
    license_id: str
    license_name: str
    path: tuple[str, ...]
    known: bool


@dataclass(frozen=True)
class Decision:
    """The license verdict for one repo at one revision.

    `verdict` answers "may this repo be published as it is declared?"; `terms` and `obligations` say
    what anyone using or redistributing it must respect; `conflicts` say what is wrong and why;
    `allowed_declarations` is what its `license` field may be, given everything it inherits.
    """

    repo: RepoRef
    verdict: Verdict
    mode: Mode
    engine_version: str
    kb_version: str
    declared_license: str
    terms: EffectiveTerms
    obligations: tuple[Obligation, ...]
    conflicts: tuple[Conflict, ...]
    allowed_declarations: AllowedDeclarations
    allowed_reasons: tuple[Reason, ...]
    ancestors: tuple[AncestorSummary, ...]

    def obligations_of(self, kind: ObligationKind, *, binding_only: bool = True) -> tuple[Obligation, ...]:
        return tuple(o for o in self.obligations if o.kind is kind and (o.binding or not binding_only))

    def conflicts_at_least(self, severity: Severity) -> tuple[Conflict, ...]:
        return tuple(c for c in self.conflicts if c.severity.rank >= severity.rank)

    def lines(self) -> tuple[tuple[str, tuple[Reason, ...]], ...]:
        """The decision as human-readable lines, each with its reasons (for the CLI and the web panel)."""
        out: list[tuple[str, tuple[Reason, ...]]] = []
        t = self.terms
        for label, perm in (
            ("commercial use", t.commercial_use),
            ("derivatives", t.derivatives),
            ("redistribution", t.redistribution),
            ("hosting as a service", t.hosting),
        ):
            cond = f" ({'; '.join(perm.conditions)})" if perm.conditions else ""
            out.append((f"{label}: {perm.value.value}{cond}", perm.reasons))
        out.append(
            (
                f"may declare: {self.allowed_declarations.describe()}",
                self.allowed_reasons or self.terms.derivatives.reasons,
            )
        )
        for th in t.user_thresholds:
            out.append(
                (
                    f"more than {th.value:,} {th.metric.replace('_', ' ')} needs a license from {th.licensor}",
                    (th.reason,),
                )
            )
        for ob in self.obligations:
            tag = "" if ob.binding else " [advisory]"
            out.append((f"{ob.kind.value.replace('_', ' ')}: {ob.value}{tag}", ob.reasons))
        for c in self.conflicts:
            out.append((f"{c.severity.value}: {c.message}", c.reasons))
        return tuple(out)


class Question(StrEnum):
    COMMERCIAL_USE = "commercial_use"
    OFFER_AS_SERVICE = "offer_as_service"
    REDISTRIBUTE = "redistribute"
    REDISTRIBUTE_QUANTIZED = "redistribute_quantized"
    CREATE_DERIVATIVE = "create_derivative"
    MONTHLY_USERS = "monthly_users"  # use it with N monthly active users


class AnswerValue(StrEnum):
    YES = "yes"
    CONDITIONAL = "conditional"  # yes, if the conditions are met
    NO = "no"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True)
class Answer:
    question: Question
    answer: AnswerValue
    conditions: tuple[str, ...]
    reasons: tuple[Reason, ...]
    mode: Mode
    engine_version: str
    monthly_active_users: int | None = None


def to_jsonable(value: Any) -> Any:
    """Plain JSON data (dicts, lists, strings, numbers) for any policy value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, RepoRef):
        return {"kind": value.kind.value, "repo_id": value.repo_id, "revision": value.revision}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value
