"""Knowledge-base integrity: every entry cites a source, ids are unique, aliases resolve."""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources

import pytest

from commons.policy import identify_license_text, load_knowledge_base, resolve_license
from commons.policy.licenses import (
    KnowledgeBaseError,
    index_keys,
    normalize_license_key,
    parse_knowledge_base,
)
from commons.policy.openness import load_mof_rules
from commons.policy.terms import AllowedDeclarations, Resolution, Tri, Verification

KB = load_knowledge_base()

# The Hub's license ids (hub-docs, repositories-licenses.md, Aug 2026 snapshot; licenses.md §1.1).
# fmt: off
HUB_IDS = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0",
    "odc-by", "odbl", "openmdw-1.0", "openmdw-1.1", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2",
    "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other"
)
# fmt: on

# Custom model licenses cards declare as `license: other` + `license_name` (licenses.md §0.6).
OBSERVED_LICENSE_NAMES = {
    "mrl": "other:mrl",
    "deepseek": "other:deepseek",
    "qwen": "other:qwen",
    "tongyi-qianwen": "other:tongyi-qianwen",
    "tongyi-qianwen-license-agreement": "other:tongyi-qianwen",
    "qwen-research": "other:qwen-research",
    "nvidia-open-model-license": "other:nvidia-open-model-license",
}


def test_every_hub_id_has_exactly_one_entry() -> None:
    hub_entries = {e.id for e in KB.entries if e.hub}
    assert set(HUB_IDS) == hub_entries
    assert len(HUB_IDS) == len(set(HUB_IDS))


def test_custom_entries_are_declared_as_other() -> None:
    for entry in KB.entries:
        if entry.id.startswith("other:"):
            assert not entry.hub
            assert entry.hub_declaration() == {"license": "other", "license_name": entry.id.split(":", 1)[1]}


def test_ids_are_unique_and_every_key_resolves_to_one_entry() -> None:
    assert len({e.id for e in KB.entries}) == len(KB.entries)
    keys = Counter(k for e in KB.entries for k in index_keys(e))
    assert [k for k, n in keys.items() if n > 1] == []
    for entry in KB.entries:
        for key in [entry.id, *entry.aliases, *([entry.spdx] if entry.spdx else [])]:
            assert KB.lookup(key) is entry, key
            assert KB.lookup(key.upper()) is entry, key  # case does not matter


@pytest.mark.parametrize("entry", KB.entries, ids=lambda e: e.id)
def test_every_entry_cites_a_source_and_says_how_it_was_checked(entry) -> None:  # type: ignore[no-untyped-def]
    assert len(entry.source) > 15
    assert re.search(r"https?://|github\.com|huggingface\.co|\.md|Hub license table", entry.source), entry.source
    assert isinstance(entry.verification, Verification)
    assert entry.name


@pytest.mark.parametrize("entry", KB.entries, ids=lambda e: e.id)
def test_declarations_refer_to_known_licenses_and_are_reflexive(entry) -> None:  # type: ignore[no-untyped-def]
    for lid in entry.derivative_may_declare.ids:
        assert lid in KB, f"{entry.id} allows unknown {lid}"
    # Compatibility is reflexive: a license that allows derivatives allows them under itself.
    if entry.permissions.derivatives.value is not Tri.NO and entry.resolution is not Resolution.UNRESOLVED:
        assert entry.derivative_may_declare.allows(entry.id), entry.id


def test_no_derivative_and_unresolved_entries_allow_no_declaration() -> None:
    for entry in KB.entries:
        if entry.permissions.derivatives.value is Tri.NO or entry.resolution is Resolution.UNRESOLVED:
            assert entry.derivative_may_declare.is_empty, entry.id


def test_kb_size_and_verification_levels() -> None:
    levels = Counter(e.verification for e in KB.entries)
    assert len(KB.entries) >= 85
    # Entries whose license text was not read at all; adding one must be a deliberate act.
    assert {e.id for e in KB.entries if e.verification is Verification.UNVERIFIED} == {
        "fair-noncommercial-research-license",
        "deepfloyd-if-license",
        "intel-research",
        "h-research",
        "grok2-community",
    }
    assert levels[Verification.FULL_TEXT] >= 15


@pytest.mark.parametrize(("name", "expected"), sorted(OBSERVED_LICENSE_NAMES.items()))
def test_observed_license_names_resolve(name: str, expected: str) -> None:
    res = resolve_license("other", name)
    assert res.terms.id == expected and not res.custom


@pytest.mark.parametrize(
    ("license", "name", "expected", "custom"),
    [
        ("Apache-2.0", None, "apache-2.0", False),
        ("apache license 2.0", None, "apache-2.0", False),
        ("CC-BY-NC-4.0", None, "cc-by-nc-4.0", False),
        ("LicenseRef-commons-llama3.1", None, "llama3.1", False),
        ("Llama_3.1", None, "llama3.1", False),
        (None, None, "unknown", False),
        ("", None, "unknown", False),
        ("other", None, "other", False),
        ("other", "my-company-license", "other", True),
        ("definitely-not-a-license", None, "other", False),
        ("other", "llama3.1", "llama3.1", False),
    ],
)
def test_resolve_license(license: str | None, name: str | None, expected: str, custom: bool) -> None:
    res = resolve_license(license, name)
    assert res.terms.id == expected
    assert res.custom is custom


def test_license_file_wins_over_the_card() -> None:
    res = resolve_license("apache-2.0", license_file="llama3.1")
    assert res.terms.id == "llama3.1"
    assert res.file_mismatch and "apache-2.0" in res.file_mismatch
    assert resolve_license("llama3.1", license_file="llama3.1").file_mismatch is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: July 23, 2024", "llama3.1"),
        ("META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 Version Release Date: April 18, 2024", "llama3"),
        ("LLAMA 2 COMMUNITY LICENSE AGREEMENT\nLlama 2 Version Release Date: July 18, 2023", "llama2"),
        (
            "Qwen RESEARCH LICENSE AGREEMENT\n\nQwen RESEARCH LICENSE AGREEMENT Release Date: September 19, 2024",
            "other:qwen-research",
        ),
        ("Qwen LICENSE AGREEMENT\n\nQwen LICENSE AGREEMENT Release Date: September 19, 2024", "other:qwen"),
        ("DEEPSEEK LICENSE AGREEMENT\n\nVersion 1.0, 23 October 2023", "other:deepseek"),
        (
            "                                 Apache License\n                           Version 2.0, January 2004",
            "apache-2.0",
        ),
        ("Gemma Terms of Use\n\nLast modified: March 24, 2025", "gemma"),
        ("Mistral AI Research License\n\nIf You want to use a Mistral Model", "other:mrl"),
        (
            "Copyright (c) 2026 Acme\n\nPermission is hereby granted, free of charge, to any person obtaining a copy",
            "mit",
        ),
        ("All rights reserved. Do not copy.", None),
        # the combined license a job writes names what it combines, and is none of them
        ('o/m is distributed under the license `other` named "commons-combined-llama3-1": ...\n'
         "- Llama 3.1 Community License Agreement (llama3.1). Source: LLAMA 3.1 COMMUNITY LICENSE AGREEMENT", None),
    ],
)
def test_identify_license_text(text: str, expected: str | None) -> None:
    assert identify_license_text(text) == expected


def test_llama_notice_lines_are_verbatim() -> None:
    # Re-checked against meta-llama/llama-models (models/*/LICENSE §1.b.iii).
    assert KB.get("llama2").attribution.notice_lines == (
        "Llama 2 is licensed under the LLAMA 2 Community License, "
        "Copyright (c) Meta Platforms, Inc. All Rights Reserved.",
    )
    for version, lid in (("3.1", "llama3.1"), ("3.2", "llama3.2"), ("3.3", "llama3.3"), ("4", "llama4")):
        assert KB.get(lid).attribution.notice_lines == (
            f"Llama {version} is licensed under the Llama {version} Community License, "
            "Copyright © Meta Platforms, Inc. All Rights Reserved.",
        )
        assert KB.get(lid).attribution.display == ("Built with Llama",)
        assert KB.get(lid).naming is not None and KB.get(lid).naming.prefix == "Llama"  # type: ignore[union-attr]
        assert KB.get(lid).user_threshold is not None and KB.get(lid).user_threshold.value == 700_000_000  # type: ignore[union-attr]
    assert KB.get("llama3").naming.prefix == "Llama 3"  # type: ignore[union-attr]
    assert KB.get("llama3").attribution.display == ("Built with Meta Llama 3",)


def test_every_license_kind_has_sensible_limits() -> None:
    for entry in KB.entries:
        if entry.research_only:
            assert entry.permissions.commercial_use.value is Tri.NO, entry.id
        if entry.share_alike is not None:
            assert not entry.derivative_may_declare.any_license, entry.id
        if entry.naming is not None:
            assert entry.naming.prefix.startswith("Llama"), entry.id


def test_packaged_data_is_a_copy_not_a_reference() -> None:
    text = resources.files("commons.policy").joinpath("data/licenses.yaml").read_text(encoding="utf-8")
    assert "schema_version: 2" in text
    assert load_knowledge_base().digest == parse_knowledge_base(text).digest


def test_mof_lists_agree_with_the_knowledge_base() -> None:
    rules = load_mof_rules()
    assert len(rules.components) == 17
    assert sum(1 for c in rules.components if not c.required) == 3
    spdx_ids = {e.spdx for e in KB.entries if e.spdx}
    for _, ids in rules.type_appropriate:
        for spdx in ids & spdx_ids:
            entry = KB.lookup(spdx)
            assert entry is not None and entry.resolution is Resolution.RESOLVED


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "licenses: [{id: a, name: A, kind: permissive, source: s, verification: full-text},"
            " {id: a, name: A, kind: permissive, source: s, verification: full-text}]",
            "duplicate",
        ),
        ("licenses: [{id: a, name: A, kind: permissive, verification: full-text}]", "lacks `source`"),
        ("licenses: [{id: a, like: b, name: A, source: s, verification: full-text}]", "unknown entry"),
        (
            "licenses: [{id: a, like: b, name: A, source: s, verification: full-text},"
            " {id: b, like: a, name: B, source: s, verification: full-text}]",
            "cycle",
        ),
        ("licenses: [{id: a, name: A, kind: nonsense, source: s, verification: full-text, permissions: {}}]", "'a'"),
        ("just text", "mapping"),
    ],
)
def test_malformed_data_fails_fast(yaml_text: str, message: str) -> None:
    with pytest.raises(KnowledgeBaseError, match=message):
        parse_knowledge_base(yaml_text)


def test_like_inherits_facts_but_not_identity() -> None:
    nd, ncnd = KB.get("cc-by-nd-4.0"), KB.get("cc-by-nc-nd-4.0")
    assert ncnd.permissions.derivatives == nd.permissions.derivatives
    assert ncnd.permissions.commercial_use.value is Tri.NO
    assert ncnd.aliases != nd.aliases and ncnd.source != nd.source
    llama33 = KB.get("llama3.3")
    assert llama33.naming == KB.get("llama3.1").naming and llama33.territorial is None
    assert KB.get("llama4").territorial is not None and "EU" in (KB.get("llama4").territorial or "")


def test_an_org_can_extend_the_knowledge_base() -> None:
    from dataclasses import replace

    custom = replace(KB.get("mit"), id="other:acme-license", name="Acme License", aliases=(), spdx=None, hub=False)
    kb = KB.extended([custom])
    assert resolve_license("other", "acme-license", kb=kb).terms.name == "Acme License"
    assert kb.digest != KB.digest


def test_allowed_declarations_algebra() -> None:
    llama = KB.get("llama3.1").derivative_may_declare
    gemma = KB.get("gemma").derivative_may_declare
    sa = KB.get("cc-by-sa-4.0").derivative_may_declare
    both = llama.intersect(gemma)
    assert not both.ids and both.custom_other and not both.is_empty
    assert llama.intersect(sa).is_empty
    assert sa.intersect(KB.get("gpl-3.0").derivative_may_declare).ids == {"gpl-3.0"}
    assert AllowedDeclarations.anything().intersect(sa) == sa


def test_normalize_license_key() -> None:
    assert normalize_license_key("  Apache License_2.0 ") == "apache-license-2.0"
    assert normalize_license_key("LicenseRef-commons-gemma") == "gemma"
