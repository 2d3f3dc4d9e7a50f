"""One license as a frozen value: permissions, conditions, limitations and where each fact comes from.

`LicenseTerms` mirrors an entry of `data/licenses.yaml` (schema in that file). The knowledge base
(`commons.policy.licenses`) builds these values; nothing here reads data.

`AllowedDeclarations` is the small algebra behind "what license may a derivative declare": each
inherited license allows a set of declarations, and a derivative must pick one that every inherited
license allows, so sets are intersected. An empty intersection is a clash (e.g. CC-BY-SA data under a
Llama fine-tune: share-alike forbids the added terms that Llama requires).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Tri(StrEnum):
    NO = "no"
    CONDITIONAL = "conditional"
    YES = "yes"

    @property
    def rank(self) -> int:
        return {Tri.NO: 0, Tri.CONDITIONAL: 1, Tri.YES: 2}[self]


class LicenseKind(StrEnum):
    PERMISSIVE = "permissive"
    WEAK_COPYLEFT = "weak-copyleft"
    COPYLEFT = "copyleft"
    RESPONSIBLE_AI = "responsible-ai"
    COMMUNITY = "community"
    NON_COMMERCIAL = "non-commercial"
    NO_DERIVATIVES = "no-derivatives"
    RESEARCH_ONLY = "research-only"
    UNKNOWN = "unknown"


class OutputsRule(StrEnum):
    """What a license says about a model trained on its model's outputs (licenses.md §2.10)."""

    FREE = "free"  # nothing flows
    DERIVATIVE = "derivative"  # the trained model is a derivative: everything flows (Gemma, RAIL, DeepSeek)
    NAMING = "naming"  # the naming prefix flows (Llama 3.1+)
    DISPLAY = "display"  # a display phrase flows (Qwen: "Built with Qwen" / "Improved using Qwen")
    PROHIBITED_OTHER_LLMS = "prohibited_other_llms"  # banned unless the model is of the same family
    RESEARCH_ONLY = "research_only"  # the trained model is research-only (MRL, AMLR)
    UNKNOWN = "unknown"


class Resolution(StrEnum):
    RESOLVED = "resolved"
    FAMILY_TAG = "family_tag"  # a family (bsd, gpl, openrail …): conservative facts, resolve the text
    UNRESOLVED = "unresolved"  # rights unknown (other, unknown, cc)


class Verification(StrEnum):
    FULL_TEXT = "full-text"
    PARTIAL = "partial"
    SECONDARY = "secondary"
    GENERAL_KNOWLEDGE = "general-knowledge"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Grant:
    value: Tri
    condition: str | None = None


@dataclass(frozen=True)
class Permissions:
    commercial_use: Grant
    derivatives: Grant
    redistribution: Grant
    hosting: Grant


@dataclass(frozen=True)
class Attribution:
    required: bool = False
    notice_lines: tuple[str, ...] = ()  # verbatim
    display: tuple[str, ...] = ()  # verbatim; when several, any one satisfies the license
    display_when_repo_matches: str | None = None  # regex on the licensed repo's id (NVIDIA Cosmos)
    notes: str | None = None


@dataclass(frozen=True)
class NamingRule:
    prefix: str
    applies_to: str


@dataclass(frozen=True)
class ShareAlike:
    family: str
    scope: str


@dataclass(frozen=True)
class UseRestrictions:
    ref: str
    passdown: bool  # must be written into downstream terms as an enforceable provision


@dataclass(frozen=True)
class UserThreshold:
    metric: str
    value: int
    licensor: str
    basis: str


@dataclass(frozen=True)
class AllowedDeclarations:
    """The licenses a derivative may declare: any, these ids, or a custom `other` carrying some terms.

    `custom_other` lists what a custom `license: other` must carry; empty means no custom license
    satisfies it.
    """

    any_license: bool = False
    ids: frozenset[str] = frozenset()
    custom_other: tuple[str, ...] = ()

    @classmethod
    def anything(cls) -> AllowedDeclarations:
        return cls(any_license=True)

    @classmethod
    def exactly(cls, license_id: str) -> AllowedDeclarations:
        return cls(ids=frozenset({license_id}))

    @property
    def is_empty(self) -> bool:
        return not self.any_license and not self.ids and not self.custom_other

    def intersect(self, other: AllowedDeclarations) -> AllowedDeclarations:
        if self.any_license:
            return other
        if other.any_license:
            return self
        custom = (
            tuple(sorted({*self.custom_other, *other.custom_other})) if self.custom_other and other.custom_other else ()
        )
        return AllowedDeclarations(ids=self.ids & other.ids, custom_other=custom)

    def allows(self, license_id: str, *, custom: bool = False) -> bool:
        """Whether declaring `license_id` satisfies this set (`custom`: it is a custom `other` license)."""
        return self.any_license or license_id in self.ids or (custom and bool(self.custom_other))

    def describe(self) -> str:
        if self.any_license:
            return "any license"
        parts = [*sorted(self.ids)]
        if self.custom_other:
            parts.append("a custom `other` license that " + "; ".join(self.custom_other))
        return " or ".join(parts) if parts else "no license (no distributable derivative)"


def intersect_all(sets: Iterable[AllowedDeclarations]) -> AllowedDeclarations:
    out = AllowedDeclarations.anything()
    for s in sets:
        out = out.intersect(s)
    return out


@dataclass(frozen=True)
class LicenseTerms:
    """One knowledge-base entry. See `data/licenses.yaml` for the meaning of each field."""

    id: str
    name: str
    spdx: str | None
    kind: LicenseKind
    permissions: Permissions
    source: str
    verification: Verification
    aliases: tuple[str, ...] = ()
    hub: bool = True
    family: str | None = None
    contractual: bool = False
    attribution: Attribution = Attribution()
    license_copy: bool = False
    mark_changes: bool = False
    naming: NamingRule | None = None
    share_alike: ShareAlike | None = None
    use_restrictions: UseRestrictions | None = None
    user_threshold: UserThreshold | None = None
    territorial: str | None = None
    research_only: bool = False
    no_improve_other_models: bool = False
    outputs: str = "silent"
    trained_on_outputs: OutputsRule = OutputsRule.FREE
    derivative_may_declare: AllowedDeclarations = AllowedDeclarations(any_license=True)
    # True where another declaration is lawful as the derivative's own terms and only merits a
    # warning (NVIDIA OML: own terms allowed, but the OML still governs the Model portion).
    other_declarations_warn: bool = False
    results_unrestricted: bool = False
    osi_approved: bool = False
    fsf_libre: bool = False
    revocable_or_updatable: bool = False
    resolution: Resolution = Resolution.RESOLVED
    fingerprints: tuple[str, ...] = ()
    clauses: tuple[tuple[str, str], ...] = ()
    notes: str | None = None

    @property
    def is_custom(self) -> bool:
        """Declared on the Hub as `license: other` (+ `license_name`)."""
        return self.id == "other" or self.id.startswith("other:")

    @property
    def license_name(self) -> str | None:
        """The `license_name` slug a card uses for this license, if it is not a Hub id."""
        return self.id.split(":", 1)[1] if self.id.startswith("other:") else None

    @property
    def unresolved(self) -> bool:
        return self.resolution is Resolution.UNRESOLVED

    def hub_declaration(self) -> dict[str, str]:
        """The card fields that declare this license on the Hub."""
        if self.license_name is not None:
            return {"license": "other", "license_name": self.license_name}
        return {"license": self.id}

    def clause(self, key: str) -> str:
        """A citation of the clause behind `key` (e.g. "notice"), or of the license as a whole."""
        found = dict(self.clauses).get(key)
        return f"{self.name} {found}" if found else self.name

    def permissiveness(self) -> tuple[int, int, int, int, int, int]:
        """A sort key: larger means more permissive (fewer limits first, then fewer conditions)."""
        p = self.permissions
        conditions = sum(
            [
                self.license_copy,
                self.mark_changes,
                self.attribution.required,
                bool(self.attribution.notice_lines),
                bool(self.attribution.display),
                self.naming is not None,
                self.share_alike is not None,
                self.use_restrictions is not None,
                self.user_threshold is not None,
            ]
        )
        return (
            p.commercial_use.value.rank,
            p.derivatives.value.rank,
            p.redistribution.value.rank,
            p.hosting.value.rank,
            -int(self.research_only),
            -conditions,
        )
