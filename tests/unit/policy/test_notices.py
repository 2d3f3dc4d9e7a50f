"""NOTICE text and the suggested license field of a derivative."""

from __future__ import annotations

import pytest
from policy_builders import D, M, decide

from commons.policy import Mode, Verdict, notice_text, suggest_license
from commons.policy.verdicts import ConflictCode

LLAMA31 = M("meta-llama/Llama-3.1-8B", "llama3.1")
GEMMA = M("google/gemma-2-9b", "gemma")
LLAMA_NOTICE = (
    "Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."
)
GEMMA_NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"


def test_notice_for_a_llama_finetune() -> None:
    decision = decide(
        [
            M("acme/Llama-chat", "llama3.1", base="meta-llama/Llama-3.1-8B", data=("acme/cc",)),
            LLAMA31,
            D("acme/cc", "cc-by-4.0"),
        ]
    )
    text = notice_text(
        decision, copyright_line="Copyright 2026 Acme Corp.", hub_url="https://hub.example", generated_on="2026-11-29"
    )
    assert text.startswith("NOTICE for acme/Llama-chat\n\nCopyright 2026 Acme Corp.\n")
    assert f"\n{LLAMA_NOTICE}\n" in text  # verbatim, on a line of its own
    assert '"Built with Llama"' in text
    assert 'the model name must begin with "Llama"' in text
    assert "Llama 3.1 Acceptable Use Policy - https://llama.meta.com/llama3_1/use-policy" in text
    assert "LICENSES/llama3.1.txt: Llama 3.1 Community License Agreement" in text
    assert (
        "acme/cc by acme, https://hub.example/datasets/acme/cc, licensed under Creative Commons Attribution 4.0" in text
    )
    assert "modified: yes" in text
    assert (
        "under the STRICT policy on 2026-11-29" in text
        and decision.engine_version in text
        and decision.kb_version in text
    )
    assert "Not legal advice" in text
    # Citations name the ancestor and the clause, not the repo itself.
    assert "Llama 3.1 Community License Agreement §1.b.i(B) (meta-llama/Llama-3.1-8B)" in text


def test_notice_lists_every_inherited_notice_line_in_lineage_order() -> None:
    decision = decide(
        [
            M(
                "acme/combo",
                "other",
                license_name="commons-combined-gemma-llama3-1",
                base=["acme/mid", "google/gemma-2-9b"],
            ),
            M("acme/mid", "apache-2.0", base="meta-llama/Llama-3.1-8B"),  # Llama reaches the combo at depth 2
            LLAMA31,
            GEMMA,
        ]
    )
    text = notice_text(decision)
    notices = text[text.index("== Required notices ==") :]
    assert notices.index(GEMMA_NOTICE) < notices.index(LLAMA_NOTICE)  # the parent before the grandparent
    assert "Gemma Prohibited Use Policy" in text and "Llama 3.1 Acceptable Use Policy" in text


def test_notice_in_lenient_mode_marks_dataset_terms_advisory() -> None:
    facts = [M("acme/lm", "mit", data=("acme/nc",)), D("acme/nc", "cc-by-nc-4.0")]
    strict = notice_text(decide(facts))
    lenient = notice_text(decide(facts, Mode.LENIENT))
    assert "== Limitations ==\n- non-commercial use only" in strict
    assert "Advisory, not applied under the lenient policy" in lenient
    assert "non commercial: non-commercial use only" in lenient
    assert "LENIENT policy" in lenient


def test_notice_of_a_plain_repo_is_short() -> None:
    text = notice_text(decide([M("acme/base", "mit")]))
    assert "== Required notices ==" not in text
    assert "LICENSES/mit.txt: MIT License" in text


@pytest.mark.parametrize(
    ("facts", "fields", "explanation"),
    [
        # quantized copies keep the exact license, including a custom `other` one
        (
            [
                M("acme/mrl-GGUF", "apache-2.0", base="mistralai/Large", rel="quantized"),
                M("mistralai/Large", "other", license_name="mrl"),
            ],
            {"license": "other", "license_name": "mrl"},
            "other:mrl",
        ),
        # a Llama fine-tune declared apache: the fix is the Llama license
        (
            [M("acme/Llama-chat", "apache-2.0", base="meta-llama/Llama-3.1-8B"), LLAMA31],
            {"license": "llama3.1"},
            "llama3.1",
        ),
        # NC data in strict mode: the most permissive NC license
        (
            [M("acme/lm", "mit", data=("acme/nc",)), D("acme/nc", "cc-by-nc-4.0")],
            {"license": "cc-by-nc-4.0"},
            "most permissive",
        ),
        # share-alike data: BY-SA rather than GPL (fewer conditions)
        (
            [M("acme/lm", "mit", data=("acme/sa",)), D("acme/sa", "cc-by-sa-4.0")],
            {"license": "cc-by-sa-4.0"},
            "most permissive",
        ),
        # a merge of Llama and Gemma: only a custom license that carries both can satisfy them
        (
            [M("acme/merge", "llama3.1", base=["meta-llama/Llama-3.1-8B", "google/gemma-2-9b"]), LLAMA31, GEMMA],
            {"license": "other", "license_name": "commons-combined-gemma-llama3-1"},
            "custom license",
        ),
        # a merge of permissive models: the most permissive of the parents' licenses
        (
            [M("acme/merge", None, base=["acme/a", "acme/b"]), M("acme/a", "apache-2.0"), M("acme/b", "mit")],
            {"license": "mit"},
            "mit",
        ),
        # trained on research-only outputs: a custom research-only license
        (
            [
                M("acme/distil", "apache-2.0", outputs=("mistralai/Large",)),
                M("mistralai/Large", "other", license_name="mrl"),
            ],
            {"license": "other", "license_name": "commons-combined-mrl"},
            "research purposes only",
        ),
        # no ancestors: the declared license is kept
        ([M("acme/base", "bsd-3-clause")], {"license": "bsd-3-clause"}, "declared one is kept"),
        # no ancestors and no license: anything goes, the engine does not guess
        ([M("acme/base")], {}, "choose one"),
        # no-derivatives base: nothing can be declared
        (
            [M("acme/nd-ft", "cc-by-nd-4.0", base="acme/nd"), M("acme/nd", "cc-by-nd-4.0")],
            {},
            "no license makes this repo distributable",
        ),
    ],
)
def test_suggest_license(facts: list, fields: dict[str, str], explanation: str) -> None:  # type: ignore[type-arg]
    suggestion = suggest_license(decide(facts))
    assert suggestion.card_fields() == fields
    assert explanation in suggestion.explanation or explanation == suggestion.license_id


@pytest.mark.parametrize(
    "facts",
    [
        [M("acme/Llama-chat", "apache-2.0", base="meta-llama/Llama-3.1-8B"), LLAMA31],
        [M("acme/Llama-merge", "llama3.1", base=["meta-llama/Llama-3.1-8B", "google/gemma-2-9b"]), LLAMA31, GEMMA],
        [M("acme/lm", "mit", data=("acme/nc",)), D("acme/nc", "cc-by-nc-4.0")],
        [
            M("acme/Llama-distil", "apache-2.0", outputs=("mistralai/Large",)),
            M("mistralai/Large", "other", license_name="mrl"),
        ],
        [M("acme/Llama-q", "mit", base="meta-llama/Llama-3.1-8B", rel="quantized"), LLAMA31],
    ],
)
def test_declaring_the_suggestion_removes_the_license_conflict(facts: list) -> None:  # type: ignore[type-arg]
    before = decide(facts)
    assert before.verdict is Verdict.CONFLICT
    fields = suggest_license(before).card_fields()
    root = facts[0]
    card = {k: v for k, v in (root.card or {}).items() if k not in ("license", "license_name")} | fields
    fixed = decide([type(root)(root.ref, card=card), *facts[1:]])
    codes = {c.code for c in fixed.conflicts}
    assert ConflictCode.DECLARED_LICENSE_INCOMPATIBLE not in codes
    assert ConflictCode.QUANTIZED_LICENSE_CHANGED not in codes
    assert fixed.verdict in (Verdict.ALLOWED, Verdict.ALLOWED_WITH_WARNINGS)
