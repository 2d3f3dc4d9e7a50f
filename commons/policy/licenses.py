"""The license knowledge base: loading `data/licenses.yaml`, normalising ids, resolving card fields.

The facts are data, not code: `data/licenses.yaml` holds one entry per license id the Hub accepts
plus the major custom model licenses (declared as `license: other` + `license_name`). This module
turns the file into `LicenseTerms` values and answers "which entry does this card mean?":

1. `license` is a known id, SPDX id or alias (case, `_` and spaces ignored): that entry.
2. `license: other`: `license_name` is looked up the same way (`tongyi-qianwen-license-agreement`
   resolves to `other:tongyi-qianwen`); a `commons-combined-…` name is the engine's own suggestion
   for a derivative that must carry several licenses' terms (see `notices.suggest_license`).
3. Nothing matches: `other` (unresolved), or `unknown` when no license is declared.
4. The LICENSE file, fingerprinted by `identify_license_text`, wins over the card on disagreement.

Reading the packaged YAML (via importlib.resources, once) is the only I/O in the policy room.
An org may add its own licenses with `KnowledgeBase.extended`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

import yaml

from commons.policy.terms import (
    AllowedDeclarations,
    Attribution,
    Grant,
    LicenseKind,
    LicenseTerms,
    NamingRule,
    OutputsRule,
    Permissions,
    Resolution,
    ShareAlike,
    Tri,
    UseRestrictions,
    UserThreshold,
    Verification,
)

COMBINED_PREFIX = "commons-combined-"
# Fields an entry never takes from the entry it is `like`: they identify or cite the entry itself.
_NOT_INHERITED = ("id", "name", "spdx", "aliases", "fingerprints", "source", "verification", "notes", "like")


class KnowledgeBaseError(ValueError):
    """The license data is malformed (raised at load time, so a bad data file fails fast)."""


@dataclass(frozen=True)
class KnowledgeBase:
    """All license entries plus a digest of the data they came from (recorded in verdicts)."""

    schema_version: int
    digest: str
    entries: tuple[LicenseTerms, ...]

    @cached_property
    def _by_id(self) -> Mapping[str, LicenseTerms]:
        return {e.id: e for e in self.entries}

    @cached_property
    def _index(self) -> Mapping[str, LicenseTerms]:
        index: dict[str, LicenseTerms] = {}
        for entry in self.entries:
            for key in index_keys(entry):
                index.setdefault(key, entry)
        return index

    @property
    def version(self) -> str:
        return f"kb{self.schema_version}-{self.digest[:12]}"

    def get(self, license_id: str) -> LicenseTerms:
        """The entry with exactly this id (KeyError if none)."""
        return self._by_id[license_id]

    def __contains__(self, license_id: object) -> bool:
        return license_id in self._by_id

    def lookup(self, text: str) -> LicenseTerms | None:
        """The entry for an id, SPDX id, alias or `license_name` slug, ignoring case and separators."""
        key = normalize_license_key(text)
        return self._index.get(key) if key else None

    def extended(self, entries: Iterable[LicenseTerms]) -> KnowledgeBase:
        """This base plus (or with replaced) entries, e.g. an org's own licenses."""
        extra = tuple(entries)
        replaced = {e.id for e in extra}
        kept = tuple(e for e in self.entries if e.id not in replaced)
        digest = hashlib.sha256((self.digest + repr(extra)).encode()).hexdigest()
        return KnowledgeBase(self.schema_version, digest, kept + extra)


def normalize_license_key(text: str) -> str:
    """Case-fold and unify separators: "Apache License 2.0" and "apache_license-2.0" are the same key."""
    key = re.sub(r"[\s_]+", "-", text.strip().casefold())
    return key.removeprefix("licenseref-commons-")


def index_keys(entry: LicenseTerms) -> tuple[str, ...]:
    """Every normalised key that resolves to this entry."""
    keys = [entry.id, *entry.aliases]
    if entry.spdx:
        keys.append(entry.spdx)
    if entry.license_name:
        keys.append(entry.license_name)
    return tuple(dict.fromkeys(normalize_license_key(k) for k in keys if k))


@cache
def load_knowledge_base() -> KnowledgeBase:
    """The packaged knowledge base (read once; package data, not user files)."""
    text = resources.files("commons.policy").joinpath("data/licenses.yaml").read_text(encoding="utf-8")
    return parse_knowledge_base(text)


def parse_knowledge_base(text: str) -> KnowledgeBase:
    """Build a knowledge base from the YAML text (pure; tests feed it their own data)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("licenses"), list):
        raise KnowledgeBaseError("the license data must be a mapping with a `licenses` list")
    defaults = data.get("defaults") or {}
    raw_by_id: dict[str, dict[str, Any]] = {}
    for raw in data["licenses"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise KnowledgeBaseError(f"license entry without an id: {raw!r}")
        if raw["id"] in raw_by_id:
            raise KnowledgeBaseError(f"duplicate license id {raw['id']!r}")
        raw_by_id[raw["id"]] = raw
    entries = tuple(_entry(_merged(raw, raw_by_id, defaults), raw) for raw in raw_by_id.values())
    digest = hashlib.sha256(text.encode()).hexdigest()
    return KnowledgeBase(int(data.get("schema_version", 0)), digest, entries)


def _merged(
    raw: dict[str, Any], raw_by_id: Mapping[str, dict[str, Any]], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    chain: list[dict[str, Any]] = []
    current: dict[str, Any] | None = raw
    while current is not None:
        if current in chain:
            raise KnowledgeBaseError(f"`like` cycle at {raw['id']!r}")
        chain.append(current)
        like = current.get("like")
        if like is None:
            current = None
        elif like not in raw_by_id:
            raise KnowledgeBaseError(f"{current['id']!r} is like unknown entry {like!r}")
        else:
            current = raw_by_id[like]
    merged: dict[str, Any] = _deep_merge({}, dict(defaults))
    for ancestor in reversed(chain[1:]):
        merged = _deep_merge(merged, {k: v for k, v in ancestor.items() if k not in _NOT_INHERITED})
    return _deep_merge(merged, raw)


# Mappings merged key by key; every other value (a grant, `derivative_may_declare`, `naming` …) is
# replaced whole, so an override never mixes half of one fact with half of another.
_MERGED_MAPPINGS = ("permissions", "attribution", "clauses")


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key in _MERGED_MAPPINGS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _entry(d: Mapping[str, Any], raw: Mapping[str, Any]) -> LicenseTerms:
    lid = d["id"]
    # Every entry cites its own source and says how it was checked; neither is inherited.
    for required in ("source", "verification", "name"):
        if not raw.get(required):
            raise KnowledgeBaseError(f"{lid!r} lacks `{required}`")
    try:
        perms = d["permissions"]
        attribution = d.get("attribution") or {}
        declare = d.get("derivative_may_declare") or {"any": True}
        threshold = d.get("user_threshold")
        return LicenseTerms(
            id=lid,
            name=str(d["name"]),
            spdx=d.get("spdx"),
            kind=LicenseKind(d["kind"]),
            permissions=Permissions(
                *(_grant(perms[k]) for k in ("commercial_use", "derivatives", "redistribution", "hosting"))
            ),
            source=str(d["source"]),
            verification=Verification(d["verification"]),
            aliases=tuple(str(a) for a in d.get("aliases") or ()),
            hub=bool(d.get("hub", True)),
            family=d.get("family"),
            contractual=bool(d.get("contractual")),
            attribution=Attribution(
                required=bool(attribution.get("required")),
                notice_lines=tuple(attribution.get("notice_lines") or ()),
                display=tuple(attribution.get("display") or ()),
                display_when_repo_matches=attribution.get("display_when_repo_matches"),
                notes=attribution.get("notes"),
            ),
            license_copy=bool(d.get("license_copy")),
            mark_changes=bool(d.get("mark_changes")),
            naming=NamingRule(**d["naming"]) if d.get("naming") else None,
            share_alike=ShareAlike(**d["share_alike"]) if d.get("share_alike") else None,
            use_restrictions=UseRestrictions(**d["use_restrictions"]) if d.get("use_restrictions") else None,
            user_threshold=UserThreshold(**{**threshold, "value": int(threshold["value"])}) if threshold else None,
            territorial=d.get("territorial"),
            research_only=bool(d.get("research_only")),
            no_improve_other_models=bool(d.get("no_improve_other_models")),
            outputs=str(d.get("outputs") or "silent"),
            trained_on_outputs=OutputsRule(d.get("trained_on_outputs") or "free"),
            derivative_may_declare=AllowedDeclarations(
                any_license=bool(declare.get("any")),
                ids=frozenset(declare.get("ids") or ()),
                custom_other=(declare["custom_other"],) if declare.get("custom_other") else (),
            ),
            other_declarations_warn=declare.get("otherwise") == "warning",
            results_unrestricted=bool(d.get("results_unrestricted")),
            osi_approved=bool(d.get("osi_approved")),
            fsf_libre=bool(d.get("fsf_libre")),
            revocable_or_updatable=bool(d.get("revocable_or_updatable")),
            resolution=Resolution(d.get("resolution") or "resolved"),
            fingerprints=tuple(d.get("fingerprints") or ()),
            clauses=tuple(sorted((str(k), str(v)) for k, v in (d.get("clauses") or {}).items())),
            notes=d.get("notes"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeBaseError(f"{lid!r}: {exc}") from None


def _grant(raw: Mapping[str, Any]) -> Grant:
    return Grant(Tri(raw["value"]), raw.get("condition"))


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class LicenseResolution:
    """Which knowledge-base entry a repo's license fields mean, and how that was decided."""

    terms: LicenseTerms
    declared: str | None  # the card's value as written ("other:<name>" for license: other)
    how: str
    file_mismatch: str | None = None  # card and LICENSE file disagree (the file wins)
    custom: bool = False  # a custom `other` license not in the knowledge base


def resolve_license(
    license: str | None,
    license_name: str | None = None,
    *,
    license_file: str | None = None,
    kb: KnowledgeBase | None = None,
) -> LicenseResolution:
    """Resolve a card's `license` (+ `license_name`) and an identified LICENSE file to one entry."""
    kb = kb or load_knowledge_base()
    card = _resolve_card(license, license_name, kb)
    if not license_file:
        return card
    from_file = kb.lookup(license_file)
    if from_file is None or from_file.id == card.terms.id:
        return card
    mismatch = f"the card declares {card.declared or 'no license'} but the LICENSE file is {from_file.name}"
    return LicenseResolution(from_file, card.declared, "LICENSE file (wins over the card)", mismatch)


def _resolve_card(license: str | None, license_name: str | None, kb: KnowledgeBase) -> LicenseResolution:
    raw = (license or "").strip()
    if not raw:
        return LicenseResolution(kb.get("unknown"), None, "no license declared")
    if normalize_license_key(raw) == "other":
        name = (license_name or "").strip()
        declared = f"other:{name}" if name else "other"
        if not name:
            return LicenseResolution(kb.get("other"), declared, "license: other without license_name")
        if normalize_license_key(name).startswith(COMBINED_PREFIX):
            return LicenseResolution(combined_terms(name), declared, "combined terms suggested by the engine")
        found = kb.lookup(name)
        if found is not None and found.id != "other":
            return LicenseResolution(found, declared, f"license_name {name!r}")
        return LicenseResolution(
            kb.get("other"), declared, f"license_name {name!r} is not in the knowledge base", custom=True
        )
    found = kb.lookup(raw)
    if found is not None:
        return LicenseResolution(found, raw, "license id")
    return LicenseResolution(kb.get("other"), raw, f"license {raw!r} is not a known license id")


def combined_terms(license_name: str) -> LicenseTerms:
    """The terms of a `commons-combined-…` license: a custom license carrying every inherited term.

    The engine suggests such a license when no standard license satisfies all ancestors (e.g. a merge
    of Gemma and Llama weights). Its own entry adds nothing: the inherited obligations say what it
    must contain, and the NOTICE generated for the repo spells them out.
    """
    slug = normalize_license_key(license_name)
    conditional = Grant(Tri.CONDITIONAL, "as the combined inherited terms allow (see the NOTICE)")
    return LicenseTerms(
        id=f"other:{slug}",
        name=f"Combined terms ({slug})",
        spdx=f"LicenseRef-commons-{slug}",
        kind=LicenseKind.COMMUNITY,
        permissions=Permissions(conditional, conditional, conditional, conditional),
        source="Generated by the Commons license engine (commons.policy.notices.suggest_license)",
        verification=Verification.GENERAL_KNOWLEDGE,
        hub=False,
        family=slug,
        attribution=Attribution(required=True, notes="carries every inherited notice"),
        license_copy=True,
        derivative_may_declare=AllowedDeclarations(
            ids=frozenset({f"other:{slug}"}), custom_other=("carries the same combined terms",)
        ),
    )


def identify_license_text(text: str, kb: KnowledgeBase | None = None) -> str | None:
    """The id of the license whose heading or notice string opens `text` (a LICENSE file), if any.

    Only the opening of the file is read, where headings are; the longest matching fingerprint wins,
    so "Qwen RESEARCH LICENSE AGREEMENT" beats "Qwen LICENSE AGREEMENT".
    """
    kb = kb or load_knowledge_base()
    head = _squash(text[:3000])
    if COMBINED_PREFIX in head[:400]:
        return None  # a combined license the engine wrote names the licenses it combines: it is none of them
    best: tuple[int, str] | None = None
    for entry in kb.entries:
        for fingerprint in entry.fingerprints:
            needle = _squash(fingerprint)
            if needle and needle in head and (best is None or len(needle) > best[0]):
                best = (len(needle), entry.id)
    return best[1] if best else None


def _squash(text: str) -> str:
    return re.sub(r"[\s,]+", " ", text.casefold()).strip()
