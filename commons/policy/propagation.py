"""Obligation propagation: what a repo inherits from all its ancestors, and what conflicts with it.

`evaluate(lineage, repo, mode=...)` is the entry point (a job after publishing, the commit hook,
the API and the web panel all call it). It walks the repo's ancestry (models and datasets,
transitively, through every channel), asks each license what it imposes (`obligations.effects`),
and joins the results (licenses.md §3.2):

* permissions take the most restrictive value; user thresholds are listed per licensor;
* obligations accumulate (use restrictions, notices, display phrases, naming prefixes …);
* the licenses a derivative may declare are intersected; an empty intersection is a clash;
* the declared license, name, NOTICE, README and gating are checked against what is inherited.

The verdict is the most severe finding, and every line carries the reasons that cause it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from commons.policy.ancestry import Walk, describe_edge, walk
from commons.policy.facts import Channel, EdgeSource, EdgeStatus, Lineage, Mode, Relation, RepoKind, RepoNode, RepoRef
from commons.policy.licenses import (
    COMBINED_PREFIX,
    KnowledgeBase,
    LicenseResolution,
    load_knowledge_base,
    resolve_license,
)
from commons.policy.obligations import Effects, PermissionTerms, Source, effects
from commons.policy.terms import AllowedDeclarations, Grant, Tri, intersect_all
from commons.policy.verdicts import (
    AncestorSummary,
    Conflict,
    ConflictCode,
    Decision,
    EffectiveTerms,
    Obligation,
    ObligationKind,
    Permission,
    Reason,
    Severity,
    ThresholdTerm,
    Verdict,
)
from commons.policy.version import ENGINE_VERSION


def resolve_node(node: RepoNode, kb: KnowledgeBase | None = None) -> LicenseResolution:
    """The knowledge-base entry for a node's card license and LICENSE file."""
    return resolve_license(node.license, node.license_name, license_file=node.license_file, kb=kb)


def evaluate(lineage: Lineage, repo: RepoRef, *, mode: Mode = Mode.STRICT, kb: KnowledgeBase | None = None) -> Decision:
    """The license Decision for `repo`: inherited terms, obligations, conflicts and the verdict."""
    kb = kb or load_knowledge_base()
    w = walk(lineage, repo)
    root = w.root
    own = resolve_node(root, kb)
    sources = [Source(root.ref, root, own, Channel.SELF)]
    for anc in w.ancestors:
        node = lineage.node(anc.node_ref) or RepoNode(anc.node_ref, known=False, hosted=False)
        sources.append(
            Source(
                node.ref,
                node,
                resolve_node(node, kb),
                anc.channel,
                anc.depth,
                anc.describe_path(),
                anc.first_edge.relation,
            )
        )
    # Licenses whose "… and derivatives thereof" exceptions cover this repo (the Llama 2 / Tongyi bans).
    families = frozenset(
        s.terms.family or s.terms.id for s in sources if s.channel in (Channel.SELF, Channel.ADAPTATION)
    )
    effs = [effects(s, root, mode, families) for s in sources]

    obligations = merge_obligations(o for e in effs for o in e.obligations)
    findings = [f for e in effs for f in e.findings]
    allowed, allowed_reasons, clash = _compatibility(sources, effs)
    findings += clash
    findings += _declared_checks(own, sources, effs)
    findings += _naming_checks(root, obligations)
    findings += _lineage_findings(w, lineage)
    findings += _file_findings(root, own, obligations, lineage, kb)
    conflicts = _merge_findings(findings)
    worst = max((c.severity for c in conflicts), key=lambda s: s.rank, default=None)
    return Decision(
        repo=root.ref,
        verdict=Verdict.from_severity(worst),
        mode=mode,
        engine_version=ENGINE_VERSION,
        kb_version=kb.version,
        declared_license=own.terms.id,
        terms=_effective_terms(sources, effs),
        obligations=obligations,
        conflicts=conflicts,
        allowed_declarations=allowed,
        allowed_reasons=allowed_reasons,
        ancestors=tuple(
            AncestorSummary(s.depth, s.ref, s.channel, s.terms.id, s.terms.name, s.path, s.node.known)
            for s in sources[1:]
        ),
    )


def merge_obligations(obligations: Iterable[Obligation]) -> tuple[Obligation, ...]:
    """One obligation per (kind, value): binding if any source binds it, with every reason."""
    merged: dict[tuple[ObligationKind, str], tuple[bool, set[Reason]]] = {}
    for ob in obligations:
        binding, reasons = merged.get(ob.key, (False, set()))
        merged[ob.key] = (binding or ob.binding, reasons | set(ob.reasons))
    order = list(ObligationKind)
    return tuple(
        Obligation(kind, value, binding, tuple(sorted(reasons)))
        for (kind, value), (binding, reasons) in sorted(
            merged.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])
        )
    )


def _compatibility(
    sources: Sequence[Source], effs: Sequence[Effects]
) -> tuple[AllowedDeclarations, tuple[Reason, ...], list[Conflict]]:
    constraining = [
        (s, e) for s, e in zip(sources, effs, strict=True) if e.allowed is not None and not e.allowed.any_license
    ]
    allowed = intersect_all(e.allowed for _, e in constraining if e.allowed is not None)
    reasons = tuple(sorted({e.allowed_reason for _, e in constraining if e.allowed_reason is not None}))
    if not constraining or not allowed.is_empty:
        return allowed, reasons, []
    share_alike = [s for s, _ in constraining if s.terms.share_alike]
    parts = "; ".join(f"{s.ref} ({s.terms.name}) allows {e.allowed.describe()}" for s, e in constraining if e.allowed)
    if share_alike:
        families = ", ".join(sorted({s.terms.share_alike.family for s in share_alike if s.terms.share_alike}))
        msg = (
            f"share-alike clash: {families} forbids the other inherited terms, so no license can be declared "
            f"({parts}); it may not be distributed"
        )
        code = ConflictCode.SHARE_ALIKE_CLASH
    else:
        msg = f"no single license satisfies every inherited license ({parts}); it may not be distributed"
        code = ConflictCode.INCOMPATIBLE_INHERITED_TERMS
    return allowed, reasons, [Conflict(Severity.BLOCKER, code, msg, reasons)]


def _declared_checks(own: LicenseResolution, sources: Sequence[Source], effs: Sequence[Effects]) -> list[Conflict]:
    declared = own.terms
    if declared.unresolved:
        return []  # the unresolved-license finding already says what to fix
    combined = declared.id.startswith(f"other:{COMBINED_PREFIX}")
    out: list[Conflict] = []
    for s, e in zip(sources, effs, strict=True):
        if s.channel is Channel.SELF:
            continue
        via = f"{s.ref} ({s.path[-1] if s.path else ''})"
        if e.allowed is not None and not e.allowed.allows(declared.id, custom=combined):
            if s.depth == 1 and s.first_relation is Relation.QUANTIZED:
                msg = (
                    f"a quantized copy must keep the exact license of what it quantizes: {s.ref} is {s.terms.id}, "
                    f"this repo declares {declared.id}"
                )
                out.append(
                    Conflict(
                        Severity.CONFLICT, ConflictCode.QUANTIZED_LICENSE_CHANGED, msg, (s.reason("derivatives", msg),)
                    )
                )
                continue
            severity = Severity.WARNING if s.terms.other_declarations_warn else Severity.CONFLICT
            msg = (
                f"declares {declared.id} but inherits the {s.terms.name} via {via}, which allows {e.allowed.describe()}"
            )
            out.append(
                Conflict(severity, ConflictCode.DECLARED_LICENSE_INCOMPATIBLE, msg, (s.reason("derivatives", msg),))
            )
        if e.advisory_allowed is not None and not e.advisory_allowed.allows(declared.id, custom=combined):
            msg = f"lenient mode: declaring {declared.id} would conflict with {s.terms.name} of {s.ref} in strict mode"
            out.append(
                Conflict(Severity.WARNING, ConflictCode.DATASET_TERMS_NOT_APPLIED, msg, (s.reason("derivatives", msg),))
            )
        research_only = any(o.kind is ObligationKind.NON_COMMERCIAL and o.binding for o in e.obligations)
        if research_only and declared.permissions.commercial_use.value is Tri.YES:
            msg = (
                f"declares {declared.id}, which allows commercial use, but inherits a non-commercial limit "
                f"from {s.terms.name} via {via}"
            )
            out.append(
                Conflict(
                    Severity.CONFLICT,
                    ConflictCode.DECLARED_LICENSE_INCOMPATIBLE,
                    msg,
                    (s.reason("commercial_use", msg),),
                )
            )
    return out


def _squash_name(text: str) -> str:
    return re.sub(r"[\s_.\-]+", "", text.casefold())


def _naming_checks(root: RepoNode, obligations: Sequence[Obligation]) -> list[Conflict]:
    if root.ref.kind is not RepoKind.MODEL:
        return []
    rules = [o for o in obligations if o.kind is ObligationKind.NAMING_PREFIX and o.binding]
    out: list[Conflict] = []
    name = _squash_name(root.ref.name)
    for rule in rules:
        if not name.startswith(_squash_name(rule.value)):
            msg = f'the model name {root.ref.name!r} must begin with "{rule.value}"'
            out.append(Conflict(Severity.CONFLICT, ConflictCode.NAMING_PREFIX_MISSING, msg, rule.reasons))
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            pa, pb = _squash_name(a.value), _squash_name(b.value)
            if not (pa.startswith(pb) or pb.startswith(pa)):
                msg = f'no name can begin with both "{a.value}" and "{b.value}"'
                out.append(Conflict(Severity.BLOCKER, ConflictCode.NAMING_PREFIX_CLASH, msg, a.reasons + b.reasons))
    return out


def _lineage_reason(edge_text: str, ref: RepoRef, depth: int, channel: Channel, text: str, source: str) -> Reason:
    return Reason(depth, ref, "", "lineage", text, source, channel, (edge_text,))


def _lineage_findings(w: Walk, lineage: Lineage) -> list[Conflict]:
    depth = {w.root.ref: 0}
    for anc in w.ancestors:
        depth.setdefault(anc.node_ref, anc.depth)
    out: list[Conflict] = []
    for edge in w.edges:
        child = lineage.node(edge.child)
        d = depth.get(child.ref if child else edge.child, 0) + 1
        text = describe_edge(edge)
        sources = ", ".join(s.value for s in edge.sources)
        notes = "; ".join(edge.notes)
        if edge.status is EdgeStatus.CONTRADICTED:
            msg = f"lineage contradicted: {text}" + (f": {notes}" if notes else "") + "; its terms are not applied"
            out.append(
                Conflict(
                    Severity.WARNING,
                    ConflictCode.LINEAGE_CONTRADICTED,
                    msg,
                    (_lineage_reason(text, edge.parent, d, edge.channel, msg, sources),),
                )
            )
        elif edge.relation is Relation.EVALUATION:
            msg = f"{text}: evaluation data passes no terms to the weights"
            out.append(
                Conflict(
                    Severity.INFO,
                    ConflictCode.LINEAGE_UNVERIFIED,
                    msg,
                    (_lineage_reason(text, edge.parent, d, edge.channel, msg, sources),),
                )
            )
        elif edge.status is EdgeStatus.VERIFIED:
            how = notes or ("recorded by a Commons job" if EdgeSource.RECORDED in edge.sources else "verified")
            msg = f"lineage verified: {text}: {how}"
            reason = _lineage_reason(text, edge.parent, d, edge.channel, msg, sources)
            out.append(Conflict(Severity.INFO, ConflictCode.LINEAGE_VERIFIED, msg, (reason,)))
        elif edge.status is EdgeStatus.UNVERIFIED:
            msg = f"lineage declared but not verified: {text}" + (f" ({notes})" if notes else "")
            out.append(
                Conflict(
                    Severity.INFO,
                    ConflictCode.LINEAGE_UNVERIFIED,
                    msg,
                    (_lineage_reason(text, edge.parent, d, edge.channel, msg, sources),),
                )
            )
    for edge in w.cycles:
        text = describe_edge(edge)
        msg = f"lineage cycle ignored: {text}"
        out.append(
            Conflict(
                Severity.WARNING,
                ConflictCode.LINEAGE_CYCLE,
                msg,
                (_lineage_reason(text, edge.parent, 0, edge.channel, msg, "graph"),),
            )
        )
    for anc in w.ancestors:
        node = lineage.node(anc.node_ref)
        if node is not None and not node.known:
            msg = f"{anc.node_ref} is outside this hub or has no facts; it is kept by id"
            path = anc.describe_path()
            out.append(
                Conflict(
                    Severity.INFO,
                    ConflictCode.EXTERNAL_ANCESTOR,
                    msg,
                    (_lineage_reason(path[-1], anc.node_ref, anc.depth, anc.channel, msg, "lineage"),),
                )
            )
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip()


def _file_findings(
    root: RepoNode, own: LicenseResolution, obligations: Sequence[Obligation], lineage: Lineage, kb: KnowledgeBase
) -> list[Conflict]:
    out: list[Conflict] = []
    binding = [o for o in obligations if o.binding]
    if own.file_mismatch:
        reason = Reason(0, root.ref, own.terms.id, own.terms.clause("grant"), own.file_mismatch, own.terms.source)
        out.append(
            Conflict(
                Severity.CONFLICT, ConflictCode.LICENSE_FILE_MISMATCH, own.file_mismatch + " (the file wins)", (reason,)
            )
        )
    for issue in root.card_issues:
        reason = Reason(0, root.ref, own.terms.id, "card metadata", issue, "README.md front matter")
        out.append(Conflict(Severity.WARNING, ConflictCode.CARD_ISSUE, issue, (reason,)))
    if root.notice_text is not None or root.files is not None:
        notice = _squash(root.notice_text or "")
        for o in binding:
            if o.kind is ObligationKind.NOTICE_LINE and _squash(o.value) not in notice:
                out.append(
                    Conflict(
                        Severity.WARNING,
                        ConflictCode.MISSING_NOTICE,
                        f'the NOTICE file lacks the required line "{o.value}"',
                        o.reasons,
                    )
                )
    if root.files is not None:
        paths = [p.casefold() for p in root.files]
        for o in binding:
            if o.kind is not ObligationKind.LICENSE_COPY:
                continue
            if o.value == own.terms.id:
                present = any(p.rsplit("/", 1)[-1].startswith(("license", "licence", "copying")) for p in paths)
            else:
                spdx = kb.get(o.value).spdx if o.value in kb else None
                needles = [o.value.casefold(), *([spdx.casefold()] if spdx else [])]
                present = any(n in p for p in paths for n in needles)
            if not present:
                msg = f"no copy of the {o.value} license text found; ship it as LICENSES/{o.value}.txt"
                out.append(Conflict(Severity.WARNING, ConflictCode.MISSING_LICENSE_COPY, msg, o.reasons))
    if root.readme_text is not None:
        readme = _squash(root.readme_text)
        for o in binding:
            if o.kind is ObligationKind.DISPLAY_PHRASE and not any(_squash(p) in readme for p in o.value.split(" / ")):
                out.append(
                    Conflict(
                        Severity.WARNING,
                        ConflictCode.MISSING_DISPLAY_PHRASE,
                        f'the README does not display "{o.value}"',
                        o.reasons,
                    )
                )
    for edge in lineage.parents(root.ref):
        parent = lineage.node(edge.parent)
        rehosts = edge.relation in (Relation.FINETUNE, Relation.MERGE, Relation.QUANTIZED)
        if edge.propagates and rehosts and parent is not None and parent.gated_terms and not root.gated_terms:
            msg = f"{parent.ref} is gated behind terms, but this {edge.relation.value} re-hosts its weights ungated"
            reason = Reason(1, parent.ref, "", "gating (extra_gated_prompt)", msg, "card metadata")
            out.append(Conflict(Severity.WARNING, ConflictCode.GATING_MISMATCH, msg, (reason,)))
    if root.multimodal and not root.eu_disallowed:
        for o in binding:
            if o.kind is ObligationKind.TERRITORIAL and "EU" in o.value:
                msg = (
                    "a multimodal model under a license that withholds rights from EU-domiciled licensees; "
                    "consider gating with extra_gated_eu_disallowed"
                )
                out.append(Conflict(Severity.INFO, ConflictCode.EU_RESTRICTION, msg, o.reasons))
    return out


def _merge_findings(findings: Iterable[Conflict]) -> tuple[Conflict, ...]:
    merged: dict[tuple[Severity, ConflictCode, str], set[Reason]] = {}
    for f in findings:
        merged.setdefault((f.severity, f.code, f.message), set()).update(f.reasons)
    return tuple(
        Conflict(sev, code, msg, tuple(sorted(reasons)))
        for (sev, code, msg), reasons in sorted(
            merged.items(), key=lambda kv: (-kv[0][0].rank, kv[0][1].value, kv[0][2])
        )
    )


def _effective_terms(sources: Sequence[Source], effs: Sequence[Effects]) -> EffectiveTerms:
    bound = [e.permissions for e in effs if e.permissions is not None]
    thresholds = tuple(
        sorted(
            ThresholdTerm(t.value, t.metric, t.licensor, s.terms.id, t.basis, s.reason("threshold", t.basis))
            for s, e in zip(sources, effs, strict=True)
            if e.permissions is not None and (t := s.terms.user_threshold) is not None
        )
    )
    return EffectiveTerms(
        commercial_use=_join(bound, 0),
        derivatives=_join(bound, 1),
        redistribution=_join(bound, 2),
        hosting=_join(bound, 3),
        user_thresholds=thresholds,
    )


def _join(bound: Sequence[PermissionTerms], index: int) -> Permission:
    pairs: list[tuple[Grant, Reason]] = []
    for p in bound:
        grant = (p.commercial_use, p.derivatives, p.redistribution, p.hosting)[index]
        pairs.append((grant, p.reasons[index]))
    if not pairs:
        return Permission(Tri.YES, (), ())
    value = min((g.value for g, _ in pairs), key=lambda v: v.rank)
    conditions = tuple(dict.fromkeys(g.condition for g, _ in sorted(pairs, key=lambda gr: gr[1]) if g.condition))
    reasons = tuple(sorted({r for g, r in pairs if g.value is value}))
    return Permission(value, conditions, reasons)
