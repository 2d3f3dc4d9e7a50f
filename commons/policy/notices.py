"""NOTICE text and the license field a derivative should declare, both computed from a Decision.

`notice_text` writes the NOTICE file a derivative must carry (licenses.md §3.6): the verbatim notice
lines every inherited license prescribes, in lineage order; attributions for CC/ODC/Apache-style
licenses; the use restrictions to pass on; required display phrases and name prefixes; limitations;
and the license texts to ship in `LICENSES/`. It records the policy mode, the engine and the
knowledge-base versions, so it can be re-derived.

`suggest_license` sets the derivative's `license` field to the most permissive license the
inheritance allows, or to `other` with a `license_name` (`commons-combined-…`) when only a custom
license that carries several licenses' terms can satisfy them all, rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from commons.policy.facts import Channel, RepoKind, RepoRef
from commons.policy.licenses import COMBINED_PREFIX, KnowledgeBase, load_knowledge_base
from commons.policy.terms import LicenseTerms, Tri
from commons.policy.verdicts import Conflict, ConflictCode, Decision, Obligation, ObligationKind, Reason, Severity

# Blockers that no choice of license can fix (an unresolved license of the repo itself can be fixed
# by declaring the suggested one, so it does not count).
_UNFIXABLE = (
    ConflictCode.NO_DERIVATIVES,
    ConflictCode.SHARE_ALIKE_CLASH,
    ConflictCode.INCOMPATIBLE_INHERITED_TERMS,
    ConflictCode.UNRESOLVED_LICENSE,
    ConflictCode.DISTILLATION_PROHIBITED,
)


@dataclass(frozen=True)
class LicenseSuggestion:
    """The card fields a derivative should declare, and why."""

    license: str | None  # the Hub `license` value; None when nothing can be declared (or anything)
    license_name: str | None
    license_id: str | None  # the knowledge-base id
    any_allowed: bool
    explanation: str
    reasons: tuple[Reason, ...]

    def card_fields(self) -> dict[str, str]:
        """The `license` / `license_name` front-matter fields to write (empty when none applies)."""
        out: dict[str, str] = {}
        if self.license:
            out["license"] = self.license
        if self.license_name:
            out["license_name"] = self.license_name
        return out


def suggest_license(decision: Decision, kb: KnowledgeBase | None = None) -> LicenseSuggestion:
    """The most permissive license the inheritance allows, as card fields."""
    kb = kb or load_knowledge_base()
    unfixable = [
        c
        for c in decision.conflicts_at_least(Severity.BLOCKER)
        if c.code in _UNFIXABLE and not all(r.channel is Channel.SELF for r in c.reasons)
    ]
    if unfixable:
        why = "; ".join(c.message for c in unfixable)
        return LicenseSuggestion(
            None, None, None, False, f"no license makes this repo distributable: {why}", _reasons_of(unfixable)
        )
    allowed = decision.allowed_declarations
    reasons = decision.allowed_reasons
    nc = [o for o in decision.obligations if o.kind is ObligationKind.NON_COMMERCIAL and o.binding and _inherited(o)]
    if nc:
        reasons += tuple(r for o in nc for r in o.reasons)
    candidates: list[LicenseTerms]
    why = "the most permissive license that every inherited license allows"
    if allowed.any_license:
        # Any license is allowed: suggest the most permissive of the licenses it derives from, so the
        # suggestion never drops what they require; a repo with no such ancestors keeps its own.
        inherited = [
            kb.get(a.license_id) for a in decision.ancestors if a.channel is Channel.ADAPTATION and a.license_id in kb
        ]
        candidates = [t for t in inherited if not t.unresolved]
        if not candidates:
            own = kb.get(decision.declared_license) if decision.declared_license in kb else None
            if own is not None and not own.unresolved:
                candidates, why = [own], "the inheritance allows any license; the declared one is kept"
    else:
        candidates = [kb.get(i) for i in sorted(allowed.ids) if i in kb]
    if nc:
        # A non-commercial limit (research-only outputs, NC data) rules out licenses that allow commerce.
        candidates = [t for t in candidates if t.permissions.commercial_use.value is not Tri.YES]
    if candidates:
        best = max(candidates, key=lambda t: (t.permissiveness(), t.id))
        return _pick(best, why, reasons)
    if allowed.any_license and not nc:
        return LicenseSuggestion(None, None, None, True, "the inheritance allows any license: choose one", reasons)
    if allowed.custom_other or allowed.any_license:
        sources = sorted({r.license_id for r in reasons if r.license_id})
        name = COMBINED_PREFIX + "-".join(
            re.sub(r"[^a-z0-9]+", "-", s.removeprefix("other:")).strip("-") for s in sources
        )
        musts = [*allowed.custom_other, *(f"limits use to {o.value}" for o in nc)]
        must = "; ".join(dict.fromkeys(musts)) or "carry every inherited term"
        explanation = f"no standard license satisfies every inherited license; declare a custom license that: {must}"
        return LicenseSuggestion("other", name, f"other:{name}", False, explanation, reasons)
    return LicenseSuggestion(None, None, None, False, "no license satisfies every inherited license", reasons)


def _pick(terms: LicenseTerms, why: str, reasons: tuple[Reason, ...]) -> LicenseSuggestion:
    fields = terms.hub_declaration()
    return LicenseSuggestion(
        fields["license"], fields.get("license_name"), terms.id, False, f"{terms.id}: {why}", reasons
    )


def _inherited(ob: Obligation) -> bool:
    return any(r.channel is not Channel.SELF for r in ob.reasons)


def _reasons_of(conflicts: Sequence[Conflict]) -> tuple[Reason, ...]:
    return tuple(r for c in conflicts for r in c.reasons)


def notice_text(
    decision: Decision,
    *,
    copyright_line: str | None = None,
    hub_url: str | None = None,
    generated_on: str | None = None,
    kb: KnowledgeBase | None = None,
) -> str:
    """The NOTICE file for `decision.repo`. `generated_on` (a date string) is passed in: no clock here."""
    kb = kb or load_knowledge_base()
    repo = decision.repo
    when = f" on {generated_on}" if generated_on else ""
    lines = [f"NOTICE for {repo.repo_id}", ""]
    if copyright_line:
        lines += [copyright_line, ""]
    lines += [
        f"{repo.repo_id} is distributed under {decision.declared_license}. It is derived from other works; the",
        "notices and terms below are required by their licenses.",
        f"Generated by the Commons license engine {decision.engine_version} (knowledge base {decision.kb_version})",
        f"under the {decision.mode.value.upper()} policy{when}. Not legal advice.",
    ]
    sections: list[tuple[str, list[str]]] = [
        ("Required notices", [o.value for o in _ordered(decision, ObligationKind.NOTICE_LINE)]),
        ("Attributions", _attributions(decision, hub_url, kb)),
        (
            "Use restrictions (follow them and pass them on to your users)",
            [_cite(o, o.value) for o in _ordered(decision, ObligationKind.USE_RESTRICTIONS)],
        ),
        ("Display", [_cite(o, f'"{o.value}"') for o in _ordered(decision, ObligationKind.DISPLAY_PHRASE)]),
        (
            "Naming",
            [
                _cite(o, f'the model name must begin with "{o.value}"')
                for o in _ordered(decision, ObligationKind.NAMING_PREFIX)
            ],
        ),
        ("Share-alike", [_cite(o, o.value) for o in _ordered(decision, ObligationKind.SHARE_ALIKE)]),
        ("Limitations", _limitations(decision)),
        ("License texts (ship them in LICENSES/)", _license_texts(decision, kb)),
    ]
    if any(o.kind is ObligationKind.MARK_CHANGES and o.binding for o in decision.obligations):
        sections.append(
            ("Changes", [f"{repo.repo_id} modifies the works above; modified files carry notices saying so."])
        )
    advisory = [f"{o.kind.value.replace('_', ' ')}: {o.value}" for o in decision.obligations if not o.binding]
    if advisory:
        sections.append(("Advisory, not applied under the lenient policy (dataset terms)", advisory))
    for title, items in sections:
        if items:
            lines += ["", f"== {title} ==", *(f"- {i}" if not title.startswith("Required") else i for i in items)]
    return "\n".join(lines) + "\n"


def _ordered(decision: Decision, kind: ObligationKind) -> list[Obligation]:
    # Lineage order: the nearest ancestor first (reasons sort by depth, then ancestor).
    found = [o for o in decision.obligations if o.kind is kind and o.binding]
    return sorted(found, key=lambda o: (min(o.reasons), o.value))  # every obligation has a reason


def _cite(ob: Obligation, text: str) -> str:
    # Cite the ancestors that impose it; the repo's own license only when nothing else does.
    inherited = [r for r in ob.reasons if r.channel is not Channel.SELF] or list(ob.reasons)
    by = sorted({f"{r.clause} ({r.ancestor})" for r in inherited})
    return f"{text} (required by {', '.join(by)})" if by else text


def _attributions(decision: Decision, hub_url: str | None, kb: KnowledgeBase) -> list[str]:
    out: list[str] = []
    for ob in _ordered(decision, ObligationKind.ATTRIBUTION):
        for r in sorted(ob.reasons):
            if r.channel is Channel.SELF:
                continue
            name = kb.get(r.license_id).name if r.license_id in kb else r.license_id
            url = _first_url(kb.get(r.license_id).source) if r.license_id in kb else None
            link = f", {hub_url.rstrip('/')}/{_path(r.ancestor)}" if hub_url else ""
            how = r.path[-1] if r.path else ""
            lic = f"{name}" + (f" <{url}>" if url else "")
            owner = r.ancestor.repo_id.split("/")[0]
            out.append(f"{r.ancestor.repo_id} by {owner}{link}, licensed under {lic}; {how}; modified: yes")
    return list(dict.fromkeys(out))


def _path(ref: RepoRef) -> str:
    return ("datasets/" if ref.kind is RepoKind.DATASET else "") + ref.repo_id


def _first_url(text: str) -> str | None:
    match = re.search(r"https?://\S+", text)
    if match:
        return match.group(0).rstrip(").,;")
    match = re.search(r"\b[\w.-]+\.(?:com|org|dev|ai|io|md)/\S*", text)
    return match.group(0).rstrip(").,;") if match else None


def _limitations(decision: Decision) -> list[str]:
    kinds = (
        ObligationKind.NON_COMMERCIAL,
        ObligationKind.USER_THRESHOLD,
        ObligationKind.TERRITORIAL,
        ObligationKind.NO_IMPROVE_OTHER_MODELS,
        ObligationKind.HOSTING_CONDITION,
    )
    return [_cite(o, o.value) for kind in kinds for o in _ordered(decision, kind)]


def _license_texts(decision: Decision, kb: KnowledgeBase) -> list[str]:
    out = []
    for o in _ordered(decision, ObligationKind.LICENSE_COPY):
        name = kb.get(o.value).name if o.value in kb else o.value
        out.append(f"LICENSES/{o.value}.txt: {name}")
    return out
