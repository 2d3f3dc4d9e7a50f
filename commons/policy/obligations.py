"""What one license, reached through one channel, imposes on a repo (licenses.md §3.1-3.4).

`Source` is a license holder seen from the repo being judged: the repo itself (SELF), an ancestor
whose weights or data it adapts (ADAPTATION), a dataset it was trained on (TRAINING_DATA) or a model
whose outputs trained it (OUTPUTS). `effects` turns one source into obligations, findings, the
permissions that bind, and the set of licenses the repo may declare because of it:

* SELF and ADAPTATION: everything flows (quantized copies must keep the exact license).
* TRAINING_DATA: strict mode — everything flows, except from data licenses that free their Results
  (CDLA); lenient mode — nothing binds but is reported, except contractual terms (accepted
  agreements, gated terms), which bind in both modes.
* OUTPUTS: only the license's outputs rule flows (derivative, naming, display, research-only, ban).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from commons.policy.facts import Channel, Mode, Relation, RepoKind, RepoNode, RepoRef
from commons.policy.licenses import LicenseResolution
from commons.policy.terms import AllowedDeclarations, Grant, LicenseTerms, OutputsRule, Resolution, Tri, Verification
from commons.policy.verdicts import Conflict, ConflictCode, Obligation, ObligationKind, Reason, Severity


@dataclass(frozen=True)
class Source:
    """One license holder as seen from the judged repo."""

    ref: RepoRef
    node: RepoNode
    resolution: LicenseResolution
    channel: Channel
    depth: int = 0
    path: tuple[str, ...] = ()
    first_relation: Relation | None = None  # the relation of the first edge on the path

    @property
    def terms(self) -> LicenseTerms:
        return self.resolution.terms

    def reason(self, key: str, text: str) -> Reason:
        t = self.terms
        return Reason(self.depth, self.ref, t.id, t.clause(key), text, t.source, self.channel, self.path)


@dataclass(frozen=True)
class PermissionTerms:
    """The permissions a source imposes on the judged repo, with the reason for each."""

    commercial_use: Grant
    derivatives: Grant
    redistribution: Grant
    hosting: Grant
    reasons: tuple[Reason, Reason, Reason, Reason]


@dataclass(frozen=True)
class Effects:
    obligations: tuple[Obligation, ...] = ()
    findings: tuple[Conflict, ...] = ()
    permissions: PermissionTerms | None = None
    allowed: AllowedDeclarations | None = None  # None: does not constrain the declared license
    allowed_reason: Reason | None = None
    advisory_allowed: AllowedDeclarations | None = None  # lenient mode: what strict mode would require


def effects(source: Source, target: RepoNode, mode: Mode, families: frozenset[str]) -> Effects:
    """Everything `source` imposes on `target`. `families`: license families the target itself is of."""
    t = source.terms
    findings = list(_resolution_findings(source, mode))
    ch = source.channel
    if ch is Channel.OUTPUTS:
        return _outputs_effects(source, target, mode, families, findings)
    binding, advisory = True, False
    if ch is Channel.TRAINING_DATA:
        if t.results_unrestricted:
            findings.append(
                _info(
                    source,
                    ConflictCode.DATASET_TERMS_NOT_APPLIED,
                    "results",
                    f"{t.name} places no conditions on Results such as trained models",
                )
            )
            return Effects(findings=tuple(findings))
        contractual = t.contractual or source.node.gated_terms
        if mode is Mode.LENIENT and not contractual:
            binding, advisory = False, True
            if not t.unresolved:
                findings.extend(_lenient_data_findings(source))
    obligations = full_obligations(source, target, binding=binding)
    if advisory:
        return Effects(tuple(obligations), tuple(findings), advisory_allowed=_allowed(source))
    if ch is not Channel.SELF and t.permissions.derivatives.value is Tri.NO and not t.unresolved:
        findings.append(_no_derivatives(source))
    allowed = (
        None if ch is Channel.SELF or t.unresolved or t.permissions.derivatives.value is Tri.NO else _allowed(source)
    )
    reason = (
        source.reason("derivatives", f"{t.name} allows a derivative to declare {allowed.describe()}")
        if allowed
        else None
    )
    return Effects(tuple(obligations), tuple(findings), _permission_terms(source), allowed, reason)


def _allowed(source: Source) -> AllowedDeclarations:
    # Quantized copies keep the exact license of what they quantize (licenses.md §3.1).
    if source.depth == 1 and source.first_relation is Relation.QUANTIZED:
        return AllowedDeclarations.exactly(source.terms.id)
    return source.terms.derivative_may_declare


def full_obligations(source: Source, target: RepoNode, *, binding: bool) -> list[Obligation]:
    """Every condition and limitation of the source's license, as obligations on the target."""
    t, p = source.terms, source.terms.permissions
    out: list[tuple[ObligationKind, str, str, str]] = []  # kind, value, clause key, text
    if t.license_copy:
        out.append((ObligationKind.LICENSE_COPY, t.id, "license_copy", f"ship a copy of the {t.name} with copies"))
    for line in t.attribution.notice_lines:
        out.append(
            (
                ObligationKind.NOTICE_LINE,
                line,
                "notice",
                f"keep this line in a NOTICE file ({t.attribution.notes or 'required'})",
            )
        )
    if t.attribution.required and not t.attribution.notice_lines:
        out.append(
            (
                ObligationKind.ATTRIBUTION,
                f"{source.ref.repo_id} ({t.id})",
                "attribution",
                t.attribution.notes or "attribute and keep notices",
            )
        )
    pattern = t.attribution.display_when_repo_matches
    if t.attribution.display and (pattern is None or re.search(pattern, source.ref.repo_id)):
        out.append(
            (
                ObligationKind.DISPLAY_PHRASE,
                " / ".join(t.attribution.display),
                "display",
                t.attribution.notes or "display prominently",
            )
        )
    if t.naming and target.ref.kind is RepoKind.MODEL:
        out.append(
            (
                ObligationKind.NAMING_PREFIX,
                t.naming.prefix,
                "naming",
                f'the model name must begin with "{t.naming.prefix}": {t.naming.applies_to}',
            )
        )
    if t.use_restrictions:
        passdown = (
            "; include them as an enforceable provision in your terms and tell your users"
            if t.use_restrictions.passdown
            else ""
        )
        out.append(
            (
                ObligationKind.USE_RESTRICTIONS,
                t.use_restrictions.ref,
                "use_restrictions",
                f"follow the use restrictions{passdown}",
            )
        )
    if t.share_alike:
        out.append(
            (ObligationKind.SHARE_ALIKE, t.share_alike.family, "share_alike", f"share-alike: {t.share_alike.scope}")
        )
    if t.mark_changes:
        out.append(
            (
                ObligationKind.MARK_CHANGES,
                "modified files carry prominent notices that they were changed",
                "mark_changes",
                "indicate changes",
            )
        )
    # An unresolved license withholds everything; the unresolved-license finding says so, and
    # "non-commercial" or "no derivatives" lines would misstate what little is known.
    limits = not t.unresolved
    if limits and p.commercial_use.value is Tri.NO:
        value = "research purposes only" if t.research_only else "non-commercial use only"
        out.append((ObligationKind.NON_COMMERCIAL, value, "commercial_use", p.commercial_use.condition or value))
    if t.user_threshold:
        th = t.user_threshold
        value = f"more than {th.value:,} {th.metric.replace('_', ' ')} needs a license from {th.licensor}"
        out.append((ObligationKind.USER_THRESHOLD, value, "threshold", th.basis))
    if t.territorial:
        out.append((ObligationKind.TERRITORIAL, t.territorial, "territorial", t.territorial))
    if limits and p.derivatives.value is Tri.NO and source.channel is not Channel.SELF:
        out.append((ObligationKind.NO_DERIVATIVES, t.id, "derivatives", p.derivatives.condition or "no derivatives"))
    if t.no_improve_other_models:
        out.append(
            (
                ObligationKind.NO_IMPROVE_OTHER_MODELS,
                f"{t.name}: the materials and outputs may not improve other LLMs",
                "outputs",
                t.outputs,
            )
        )
    if limits and p.hosting.value is not Tri.YES and p.hosting.condition:
        out.append((ObligationKind.HOSTING_CONDITION, f"{t.id}: {p.hosting.condition}", "hosting", p.hosting.condition))
    if t.revocable_or_updatable:
        out.append(
            (
                ObligationKind.TERMS_MAY_CHANGE,
                t.id,
                "updates",
                "the licensor may update, restrict or revoke these terms: monitor them",
            )
        )
    return [Obligation(kind, value, binding, (source.reason(key, text),)) for kind, value, key, text in out]


def _permission_terms(source: Source) -> PermissionTerms:
    t, p = source.terms, source.terms.permissions
    redistribution, hosting = p.redistribution, p.hosting
    if p.derivatives.value is Tri.NO and source.channel is not Channel.SELF:
        # A derivative of no-derivatives material is adapted material: it may not be shared at all.
        redistribution = Grant(Tri.NO, f"derivative of {t.name} material, which may not be shared")
        hosting = Grant(Tri.NO, f"serving it shares adapted {t.name} material")
    grants = (p.commercial_use, p.derivatives, redistribution, hosting)
    keys = ("commercial_use", "derivatives", "redistribution", "hosting")
    reasons = tuple(
        source.reason(k, f"{t.name}: {g.value.value}" + (f" ({g.condition})" if g.condition else ""))
        for k, g in zip(keys, grants, strict=True)
    )
    return PermissionTerms(*grants, reasons=(reasons[0], reasons[1], reasons[2], reasons[3]))


def _outputs_effects(
    source: Source, target: RepoNode, mode: Mode, families: frozenset[str], findings: list[Conflict]
) -> Effects:
    t = source.terms
    rule = t.trained_on_outputs
    is_model = target.ref.kind is RepoKind.MODEL
    if t.unresolved:
        return Effects(findings=tuple(findings))
    if rule is OutputsRule.DERIVATIVE:
        if not is_model:
            text = (
                f"{t.name} counts a model trained on this data as a derivative; it places no terms on the data itself"
            )
            return Effects(
                findings=(*findings, _info(source, ConflictCode.DATASET_TERMS_NOT_APPLIED, "derivatives", text))
            )
        obligations = full_obligations(source, target, binding=True)
        allowed = t.derivative_may_declare
        reason = source.reason(
            "derivatives",
            f"a model trained on outputs of a {t.name} model is its derivative; it may declare {allowed.describe()}",
        )
        return Effects(tuple(obligations), tuple(findings), _permission_terms(source), allowed, reason)
    out: list[Obligation] = []
    if rule is OutputsRule.NAMING and is_model and t.naming:
        text = f'trained on outputs: the model name must begin with "{t.naming.prefix}"'
        out.append(Obligation(ObligationKind.NAMING_PREFIX, t.naming.prefix, True, (source.reason("naming", text),)))
    elif rule is OutputsRule.DISPLAY and is_model and t.attribution.display:
        text = "trained on outputs: display one of these phrases in the model's documentation"
        out.append(
            Obligation(
                ObligationKind.DISPLAY_PHRASE,
                " / ".join(t.attribution.display),
                True,
                (source.reason("display", text),),
            )
        )
    elif rule is OutputsRule.RESEARCH_ONLY:
        text = f"outputs of a {t.name} model, and what is trained on them, are for research purposes only"
        out.append(
            Obligation(
                ObligationKind.NON_COMMERCIAL, "research purposes only", True, (source.reason("commercial_use", text),)
            )
        )
        no = Grant(Tri.NO, f"trained on outputs of a {t.name} model (research only)")
        reason = source.reason("commercial_use", no.condition or "")
        hosting = Grant(Tri.CONDITIONAL, "research purposes only")
        yes = Grant(Tri.YES)
        perms = PermissionTerms(no, yes, yes, hosting, (reason, reason, reason, reason))
        return Effects(tuple(out), tuple(findings), perms)
    elif rule is OutputsRule.PROHIBITED_OTHER_LLMS:
        text = f"{t.name}: its outputs may not be used to improve other LLMs"
        out.append(
            Obligation(
                ObligationKind.NO_IMPROVE_OTHER_MODELS,
                f"{t.name}: the materials and outputs may not improve other LLMs",
                True,
                (source.reason("outputs", text),),
            )
        )
        if is_model and (t.family or t.id) not in families:
            msg = (
                f"trained on outputs of {source.ref}, but the {t.name} forbids using its outputs to improve any "
                f"other LLM (its own derivatives are excepted)"
            )
            findings.append(
                Conflict(
                    Severity.BLOCKER, ConflictCode.DISTILLATION_PROHIBITED, msg, (source.reason("outputs", t.outputs),)
                )
            )
    elif rule is OutputsRule.UNKNOWN:
        severity = Severity.REVIEW if mode is Mode.STRICT else Severity.WARNING
        msg = f"trained on outputs of {source.ref}: what the {t.name} says about outputs is not known; review"
        findings.append(
            Conflict(severity, ConflictCode.UNVERIFIED_LICENSE_FACTS, msg, (source.reason("outputs", t.outputs),))
        )
    return Effects(tuple(out), tuple(findings))


def _resolution_findings(source: Source, mode: Mode) -> list[Conflict]:
    t = source.terms
    where = "its own license" if source.channel is Channel.SELF else f"ancestor {source.ref}"
    out: list[Conflict] = []
    if t.resolution is Resolution.UNRESOLVED:
        lenient_data = source.channel is Channel.TRAINING_DATA and mode is Mode.LENIENT
        severity = Severity.BLOCKER if mode is Mode.STRICT else (Severity.WARNING if lenient_data else Severity.REVIEW)
        declared = source.resolution.declared or "no license"
        unknown_repo = "" if source.node.known else " (outside this hub, no facts: kept by id)"
        msg = (
            f"{where}{unknown_repo} has an unresolved license ({declared}: {source.resolution.how}); rights are unknown"
        )
        out.append(
            Conflict(severity, ConflictCode.UNRESOLVED_LICENSE, msg, (source.reason("grant", t.notes or t.name),))
        )
    elif t.resolution is Resolution.FAMILY_TAG:
        msg = f"{where} declares the family tag {t.id!r}; resolve the concrete text from its LICENSE file"
        out.append(
            Conflict(Severity.WARNING, ConflictCode.FAMILY_TAG, msg, (source.reason("grant", t.notes or t.name),))
        )
    if t.verification is Verification.UNVERIFIED:
        severity = Severity.REVIEW if mode is Mode.STRICT else Severity.WARNING
        msg = f"{where} is under the {t.name}, whose facts were not verified against its text; review"
        out.append(Conflict(severity, ConflictCode.UNVERIFIED_LICENSE_FACTS, msg, (source.reason("grant", t.source),)))
    return out


def _no_derivatives(source: Source) -> Conflict:
    t = source.terms
    msg = f"derived from {source.ref} under the {t.name}, which forbids sharing adapted material: not distributable"
    return Conflict(
        Severity.BLOCKER,
        ConflictCode.NO_DERIVATIVES,
        msg,
        (source.reason("derivatives", t.permissions.derivatives.condition or ""),),
    )


def _lenient_data_findings(source: Source) -> list[Conflict]:
    t, p = source.terms, source.terms.permissions
    limits = []
    if p.commercial_use.value is Tri.NO:
        limits.append("non-commercial")
    if t.share_alike:
        limits.append(f"share-alike ({t.share_alike.family})")
    if p.derivatives.value is Tri.NO:
        limits.append("no derivatives")
    if t.research_only:
        limits.append("research only")
    if not limits:
        text = f"lenient mode: {t.name} attribution is recommended, not required"
        return [_info(source, ConflictCode.DATASET_TERMS_NOT_APPLIED, "attribution", text)]
    msg = (
        f"lenient mode: trained on {source.ref} under the {t.name} ({', '.join(limits)}); these terms are not applied "
        "because lenient mode assumes training is not adaptation; use at your own risk"
    )
    return [Conflict(Severity.WARNING, ConflictCode.DATASET_TERMS_NOT_APPLIED, msg, (source.reason("grant", t.name),))]


def _info(source: Source, code: ConflictCode, key: str, text: str) -> Conflict:
    return Conflict(Severity.INFO, code, text, (source.reason(key, text),))
