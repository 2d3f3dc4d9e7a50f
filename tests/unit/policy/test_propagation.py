"""Table-driven lineage scenarios: expected verdicts, conflict codes and reason substrings.

Each scenario builds a lineage from cards (and, where it matters, provenance records and file
evidence), evaluates the first repo and checks the verdict, the findings, and that the reasons name
the ancestor, the license and the clause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from policy_builders import D, M, decide, everything

from commons.policy import (
    AnswerValue,
    Channel,
    ConflictCode,
    FileEvidence,
    Mode,
    ObligationKind,
    Question,
    RepoFacts,
    RepoKind,
    RepoRef,
    TensorComparison,
    Tri,
    Verdict,
    answer,
    ask,
    build_lineage,
    dataset,
    evaluate,
    model,
)
from commons.policy.facts import Edge, EdgeSource, EdgeStatus, Lineage, Relation, RepoNode

STRICT, LENIENT = Mode.STRICT, Mode.LENIENT
C = ConflictCode

LLAMA31 = M("meta-llama/Llama-3.1-8B", "llama3.1")
LLAMA3 = M("meta-llama/Meta-Llama-3-8B", "llama3")
LLAMA2 = M("meta-llama/Llama-2-7b-hf", "llama2")
LLAMA32V = M("meta-llama/Llama-3.2-11B-Vision", "llama3.2", pipeline_tag="image-text-to-text")
GEMMA = M("google/gemma-2-9b", "gemma")
MISTRAL = M("mistralai/Mistral-7B-v0.1", "apache-2.0")
MRL = M("mistralai/Mistral-Large-Instruct-2411", "other", license_name="mrl")
QWEN72 = M("Qwen/Qwen2.5-72B-Instruct", "other", license_name="qwen")
TONGYI = M("Qwen/Qwen-72B", "other", license_name="tongyi-qianwen")
DEEPSEEK = M("deepseek-ai/deepseek-llm-7b-base", "other", license_name="deepseek")
SD = M("CompVis/stable-diffusion-v1-4", "creativeml-openrail-m")
BLOOM = M("bigscience/bloomz-7b1", "bigscience-bloom-rail-1.0")
NEMO = M("nvidia/Nemotron-Mini-4B", "other", license_name="nvidia-open-model-license")
FALCON = M("tiiuae/falcon-180B", "other", license_name="falcon-180b")
MIT_BASE = M("acme/base-mit", "mit")


@dataclass(frozen=True)
class Scenario:
    id: str
    facts: list[RepoFacts]
    verdict: Verdict
    must: tuple[str, ...] = ()  # substrings somewhere in the decision's lines and reasons
    codes: tuple[ConflictCode, ...] = ()  # findings that must be present
    absent: tuple[ConflictCode, ...] = ()  # findings that must not be present
    mode: Mode = STRICT
    obligations: tuple[tuple[ObligationKind, str], ...] = field(default=())  # binding (kind, value substring)


SCENARIOS = [
    # ---- the two examples of the issue
    Scenario(
        "apache-on-llama3.1-finetune",
        [M("acme/Llama-chat-8b", "apache-2.0", base="meta-llama/Llama-3.1-8B"), LLAMA31],
        Verdict.CONFLICT,
        must=(
            "declares apache-2.0 but inherits the Llama 3.1 Community License Agreement",
            "§1.a and §1.b.i",
            "meta-llama/Llama-3.1-8B",
        ),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "mit-trained-on-cc-by-nc-data-strict",
        [M("acme/summarizer", "mit", data=("acme/news-nc",)), D("acme/news-nc", "cc-by-nc-4.0")],
        Verdict.CONFLICT,
        must=("declares mit but inherits the Creative Commons Attribution Non Commercial 4.0", "§1(i) and §2(a)(1)"),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        obligations=((ObligationKind.NON_COMMERCIAL, "non-commercial"),),
    ),
    Scenario(
        "mit-trained-on-cc-by-nc-data-lenient",
        [M("acme/summarizer", "mit", data=("acme/news-nc",)), D("acme/news-nc", "cc-by-nc-4.0")],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("lenient mode", "non-commercial", "would conflict with Creative Commons Attribution Non Commercial 4.0"),
        codes=(C.DATASET_TERMS_NOT_APPLIED,),
        absent=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        mode=LENIENT,
    ),
    # ---- well-behaved derivatives
    Scenario(
        "llama3.1-finetune-done-right",
        [M("acme/Llama-3.1-acme-chat", "llama3.1", base="meta-llama/Llama-3.1-8B", rel="finetune"), LLAMA31],
        Verdict.ALLOWED,
        obligations=(
            (ObligationKind.NOTICE_LINE, "Llama 3.1 is licensed under the Llama 3.1 Community License"),
            (ObligationKind.DISPLAY_PHRASE, "Built with Llama"),
            (ObligationKind.NAMING_PREFIX, "Llama"),
            (ObligationKind.USE_RESTRICTIONS, "Llama 3.1 Acceptable Use Policy"),
            (ObligationKind.USER_THRESHOLD, "700,000,000"),
        ),
        codes=(C.LINEAGE_UNVERIFIED,),
    ),
    Scenario(
        "root-without-ancestors",
        [M("acme/tiny-from-scratch", "apache-2.0")],
        Verdict.ALLOWED,
        obligations=((ObligationKind.LICENSE_COPY, "apache-2.0"), (ObligationKind.MARK_CHANGES, "modified files")),
    ),
    # ---- quantized copies
    Scenario(
        "quantized-keeps-llama-license",
        [M("acme/Llama-3.1-8B-GGUF", "llama3.1", base="meta-llama/Llama-3.1-8B", rel="quantized"), LLAMA31],
        Verdict.ALLOWED,
        absent=(C.QUANTIZED_LICENSE_CHANGED,),
    ),
    Scenario(
        "quantized-changes-license",
        [M("acme/base-mit-GGUF", "apache-2.0", base="acme/base-mit", rel="quantized"), MIT_BASE],
        Verdict.CONFLICT,
        must=("a quantized copy must keep the exact license", "acme/base-mit is mit"),
        codes=(C.QUANTIZED_LICENSE_CHANGED,),
    ),
    Scenario(
        "quantized-no-derivatives",
        [
            M("acme/nd-model-GGUF", "cc-by-nd-4.0", base="acme/nd-model", rel="quantized"),
            M("acme/nd-model", "cc-by-nd-4.0"),
        ],
        Verdict.BLOCKED,
        must=("forbids sharing adapted material", "§2(a)(1)(B)"),
        codes=(C.NO_DERIVATIVES,),
    ),
    Scenario(
        "quantization-inferred-from-gguf-evidence",
        [
            M(
                "acme/Mistral-GGUF",
                "mit",
                base="mistralai/Mistral-7B-v0.1",
                evidence=FileEvidence(gguf_base_models=("mistralai/Mistral-7B-v0.1",), quantization="gguf:15"),
            ),
            MISTRAL,
        ],
        Verdict.CONFLICT,
        must=("inferred as quantized", "GGUF metadata names this base model", "apache-2.0"),
        codes=(C.QUANTIZED_LICENSE_CHANGED,),
    ),
    # ---- adapters
    Scenario(
        "gemma-adapter-declared-gemma",
        [M("acme/gemma-lora", "gemma", base="google/gemma-2-9b", rel="adapter"), GEMMA],
        Verdict.ALLOWED,
        obligations=(
            (ObligationKind.NOTICE_LINE, "Gemma is provided under and subject to the Gemma Terms of Use"),
            (ObligationKind.USE_RESTRICTIONS, "Gemma Prohibited Use Policy"),
        ),
    ),
    Scenario(
        "gemma-adapter-declared-apache",
        [M("acme/gemma-lora", "apache-2.0", base="google/gemma-2-9b", rel="adapter"), GEMMA],
        Verdict.CONFLICT,
        must=("declares apache-2.0 but inherits the Gemma Terms of Use", "adapter on google/gemma-2-9b"),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "adapter-evidence-contradicts-card",
        [
            M(
                "acme/lora",
                "apache-2.0",
                base="mistralai/Mistral-7B-v0.1",
                rel="adapter",
                evidence=FileEvidence(adapter_base="meta-llama/Llama-3.1-8B"),
            ),
            MISTRAL,
            LLAMA31,
        ],
        Verdict.CONFLICT,
        must=("adapter_config.json names meta-llama/Llama-3.1-8B", "adapter_config.json names this base model"),
        codes=(C.LINEAGE_CONTRADICTED, C.DECLARED_LICENSE_INCOMPATIBLE),
    ),
    # ---- merges
    Scenario(
        "merge-of-permissive-models",
        [M("acme/merge", "apache-2.0", base=["acme/base-mit", "mistralai/Mistral-7B-v0.1"]), MIT_BASE, MISTRAL],
        Verdict.ALLOWED,
        must=("merge of acme/base-mit",),
        obligations=((ObligationKind.LICENSE_COPY, "mit"), (ObligationKind.LICENSE_COPY, "apache-2.0")),
    ),
    Scenario(
        "merge-llama-and-gemma-declared-llama",
        [
            M("acme/Llama-gemma-merge", "llama3.1", base=["meta-llama/Llama-3.1-8B", "google/gemma-2-9b"], rel="merge"),
            LLAMA31,
            GEMMA,
        ],
        Verdict.CONFLICT,
        must=("declares llama3.1 but inherits the Gemma Terms of Use",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        obligations=(
            (ObligationKind.USE_RESTRICTIONS, "Gemma Prohibited Use Policy"),
            (ObligationKind.USE_RESTRICTIONS, "Llama 3.1 Acceptable Use Policy"),
        ),
    ),
    Scenario(
        "merge-share-alike-clash",
        [
            M("acme/sa-merge", "cc-by-sa-4.0", base=["acme/sa", "acme/nc-sa"]),
            M("acme/sa", "cc-by-sa-4.0"),
            M("acme/nc-sa", "cc-by-nc-sa-4.0"),
        ],
        Verdict.BLOCKED,
        must=("share-alike clash", "CC-BY-NC-SA-4.0", "CC-BY-SA-4.0"),
        codes=(C.SHARE_ALIKE_CLASH,),
    ),
    Scenario(
        "merge-gpl-and-agpl-as-agpl",
        [
            M("acme/gpl-merge", "agpl-3.0", base=["acme/gpl", "acme/agpl"]),
            M("acme/gpl", "gpl-3.0"),
            M("acme/agpl", "agpl-3.0"),
        ],
        Verdict.ALLOWED,
        obligations=((ObligationKind.SHARE_ALIKE, "AGPL-3.0"), (ObligationKind.SHARE_ALIKE, "GPL-3.0")),
    ),
    Scenario(
        "gpl-finetune-declared-mit",
        [M("acme/gpl-ft", "mit", base="acme/gpl"), M("acme/gpl", "gpl-3.0")],
        Verdict.CONFLICT,
        must=("declares mit but inherits the GNU General Public License v3.0", "§5(c)"),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "rail-and-deepseek-merge-accumulates-use-restrictions",
        [
            M(
                "acme/rail-merge",
                "other",
                license_name="commons-combined-creativeml-openrail-m-deepseek",
                base=["CompVis/stable-diffusion-v1-4", "deepseek-ai/deepseek-llm-7b-base"],
            ),
            SD,
            DEEPSEEK,
        ],
        Verdict.ALLOWED,
        obligations=(
            (ObligationKind.USE_RESTRICTIONS, "CreativeML OpenRAIL-M Attachment A"),
            (ObligationKind.USE_RESTRICTIONS, "DeepSeek License Agreement v1.0, Attachment A"),
        ),
    ),
    Scenario(
        "rail-finetune-declared-mit",
        [M("acme/sd-ft", "mit", base="CompVis/stable-diffusion-v1-4"), SD],
        Verdict.CONFLICT,
        must=("declares mit but inherits the CreativeML OpenRAIL-M", "§4(e)"),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    # ---- multi-level chains
    Scenario(
        "two-level-llama-chain",
        [
            M("acme/Llama-B", "apache-2.0", base="acme/Llama-A"),
            M("acme/Llama-A", "llama3.1", base="meta-llama/Llama-3.1-8B"),
            LLAMA31,
        ],
        Verdict.CONFLICT,
        must=(
            "inherits the Llama 3.1 Community License Agreement via meta-llama/Llama-3.1-8B",
            "acme/Llama-A is a fine-tune of meta-llama/Llama-3.1-8B",
        ),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "three-level-permissive-chain",
        [M("acme/ft2", "mit", base="acme/ft1"), M("acme/ft1", "apache-2.0", base="acme/base-mit"), MIT_BASE],
        Verdict.ALLOWED,
        obligations=((ObligationKind.LICENSE_COPY, "apache-2.0"), (ObligationKind.LICENSE_COPY, "mit")),
    ),
    Scenario(
        "rail-chain-with-distilled-deepseek",
        [
            M(
                "acme/bloom-ft2",
                "bigscience-bloom-rail-1.0",
                base="acme/bloom-ft",
                outputs=("deepseek-ai/deepseek-llm-7b-base",),
            ),
            M("acme/bloom-ft", "bigscience-bloom-rail-1.0", base="bigscience/bloomz-7b1"),
            BLOOM,
            DEEPSEEK,
        ],
        Verdict.CONFLICT,
        must=("a model trained on outputs of a DeepSeek License Agreement v1.0 model is its derivative",),
        obligations=(
            (ObligationKind.USE_RESTRICTIONS, "BLOOM RAIL 1.0 Attachment A"),
            (ObligationKind.USE_RESTRICTIONS, "DeepSeek License Agreement v1.0, Attachment A"),
        ),
    ),
    # ---- datasets: strict vs lenient
    Scenario(
        "cc-by-sa-data-mit-model-strict",
        [M("acme/wiki-lm", "mit", data=("wikimedia/wikipedia",)), D("wikimedia/wikipedia", "cc-by-sa-4.0")],
        Verdict.CONFLICT,
        must=(
            "declares mit but inherits the Creative Commons Attribution Share Alike 4.0",
            "trained on datasets/wikimedia/wikipedia",
        ),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        obligations=((ObligationKind.SHARE_ALIKE, "CC-BY-SA-4.0"),),
    ),
    Scenario(
        "cc-by-sa-data-on-llama-strict",
        [
            M("acme/Llama-wiki", "llama3.1", base="meta-llama/Llama-3.1-8B", data=("wikimedia/wikipedia",)),
            LLAMA31,
            D("wikimedia/wikipedia", "cc-by-sa-4.0"),
        ],
        Verdict.BLOCKED,
        must=("share-alike clash",),
        codes=(C.SHARE_ALIKE_CLASH,),
    ),
    Scenario(
        "cc-by-sa-data-on-llama-lenient",
        [
            M("acme/Llama-wiki", "llama3.1", base="meta-llama/Llama-3.1-8B", data=("wikimedia/wikipedia",)),
            LLAMA31,
            D("wikimedia/wikipedia", "cc-by-sa-4.0"),
        ],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("share-alike (CC-BY-SA-4.0)", "assumes training is not adaptation"),
        absent=(C.SHARE_ALIKE_CLASH,),
        mode=LENIENT,
    ),
    Scenario(
        "no-derivatives-data-strict",
        [M("acme/nd-trained", "apache-2.0", data=("acme/nd-data",)), D("acme/nd-data", "cc-by-nd-4.0")],
        Verdict.BLOCKED,
        codes=(C.NO_DERIVATIVES,),
    ),
    Scenario(
        "no-derivatives-data-lenient",
        [M("acme/nd-trained", "apache-2.0", data=("acme/nd-data",)), D("acme/nd-data", "cc-by-nd-4.0")],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("no derivatives",),
        absent=(C.NO_DERIVATIVES,),
        mode=LENIENT,
    ),
    Scenario(
        "cdla-permissive-data-frees-results",
        [M("acme/cdla-lm", "mit", data=("acme/cdla-data",)), D("acme/cdla-data", "cdla-permissive-2.0")],
        Verdict.ALLOWED,
        must=("places no conditions on Results",),
    ),
    Scenario(
        "cc-by-data-attribution-strict",
        [M("acme/cc-lm", "mit", data=("acme/cc-data",)), D("acme/cc-data", "cc-by-4.0")],
        Verdict.ALLOWED,
        obligations=((ObligationKind.ATTRIBUTION, "acme/cc-data (cc-by-4.0)"),),
    ),
    Scenario(
        "odbl-data-strict",
        [M("acme/osm-lm", "mit", data=("acme/osm",)), D("acme/osm", "odbl")],
        Verdict.CONFLICT,
        must=("Open Database License",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "gated-contractual-data-binds-in-lenient",
        [M("acme/gated-lm", "mit", data=("acme/gated-nc",)), D("acme/gated-nc", "cc-by-nc-4.0", gated=True)],
        Verdict.CONFLICT,
        must=("declares mit but inherits the Creative Commons Attribution Non Commercial 4.0",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        mode=LENIENT,
    ),
    Scenario(
        "contractual-license-data-binds-in-lenient",
        [M("acme/cuda-lm", "mit", data=("acme/mrl-synth",)), D("acme/mrl-synth", "other", license_name="mrl")],
        Verdict.CONFLICT,
        must=("Mistral AI Research License",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        mode=LENIENT,
    ),
    Scenario(
        "dataset-derived-from-nc-dataset-flows-in-lenient",
        [D("acme/cleaned", "mit", sources=("extended|acme/raw-nc",)), D("acme/raw-nc", "cc-by-nc-4.0")],
        Verdict.CONFLICT,
        must=("derived from datasets/acme/raw-nc",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        mode=LENIENT,
    ),
    Scenario(
        "eval-only-dataset-passes-nothing",
        [
            M(
                "acme/eval-lm",
                "apache-2.0",
                **{
                    "model-index": [{"name": "x", "results": [{"dataset": {"type": "acme/bench-nc", "name": "bench"}}]}]
                },
            ),
            D("acme/bench-nc", "cc-by-nc-4.0"),
        ],
        Verdict.ALLOWED,
        must=("evaluation data passes no terms to the weights",),
        absent=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    # ---- unknown and `other`
    Scenario(
        "unknown-base-strict",
        [M("acme/mystery-ft", "apache-2.0", base="someone/no-license"), M("someone/no-license")],
        Verdict.BLOCKED,
        must=("unresolved license", "no license declared"),
        codes=(C.UNRESOLVED_LICENSE,),
    ),
    Scenario(
        "unknown-base-lenient",
        [M("acme/mystery-ft", "apache-2.0", base="someone/no-license"), M("someone/no-license")],
        Verdict.NEEDS_REVIEW,
        codes=(C.UNRESOLVED_LICENSE,),
        mode=LENIENT,
    ),
    Scenario(
        "unresolvable-other-on-the-repo-strict",
        [M("acme/custom", "other", license_name="acme-special-terms")],
        Verdict.BLOCKED,
        must=("license_name 'acme-special-terms' is not in the knowledge base",),
        codes=(C.UNRESOLVED_LICENSE,),
    ),
    Scenario(
        "unknown-dataset-strict",
        [M("acme/scraped-lm", "mit", data=("acme/scrape",)), D("acme/scrape")],
        Verdict.BLOCKED,
        codes=(C.UNRESOLVED_LICENSE,),
    ),
    Scenario(
        "unknown-dataset-lenient",
        [M("acme/scraped-lm", "mit", data=("acme/scrape",)), D("acme/scrape")],
        Verdict.ALLOWED_WITH_WARNINGS,
        codes=(C.UNRESOLVED_LICENSE,),
        mode=LENIENT,
    ),
    Scenario(
        "other-license-name-alias-resolves",
        [
            M("acme/qwen-ft", "other", license_name="tongyi-qianwen", base="Qwen/Qwen-72B"),
            M("Qwen/Qwen-72B", "other", license_name="tongyi-qianwen-license-agreement"),
        ],
        Verdict.ALLOWED,
        obligations=(
            (ObligationKind.USER_THRESHOLD, "100,000,000"),
            (ObligationKind.NOTICE_LINE, "Tongyi Qianwen is licensed"),
        ),
    ),
    Scenario(
        "family-tag-needs-resolution",
        [M("acme/bsd-ft", "bsd", base="acme/bsd-base"), M("acme/bsd-base", "bsd")],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("family tag 'bsd'",),
        codes=(C.FAMILY_TAG,),
    ),
    Scenario(
        "unverified-license-facts-need-review",
        [M("acme/grok-ft", "grok2-community", base="xai-org/grok-2"), M("xai-org/grok-2", "grok2-community")],
        Verdict.NEEDS_REVIEW,
        codes=(C.UNVERIFIED_LICENSE_FACTS,),
    ),
    # ---- Llama naming rule
    Scenario(
        "llama-name-prefix-missing",
        [M("acme/chat-8b", "llama3.1", base="meta-llama/Llama-3.1-8B"), LLAMA31],
        Verdict.CONFLICT,
        must=("the model name 'chat-8b' must begin with \"Llama\"", "§1.b.i"),
        codes=(C.NAMING_PREFIX_MISSING,),
    ),
    Scenario(
        "llama3-needs-llama-3-prefix",
        [M("acme/Llama-acme", "llama3", base="meta-llama/Meta-Llama-3-8B"), LLAMA3],
        Verdict.CONFLICT,
        must=('must begin with "Llama 3"',),
        codes=(C.NAMING_PREFIX_MISSING,),
    ),
    Scenario(
        "llama3-prefix-satisfied",
        [M("acme/Llama-3-acme", "llama3", base="meta-llama/Meta-Llama-3-8B"), LLAMA3],
        Verdict.ALLOWED,
        obligations=((ObligationKind.DISPLAY_PHRASE, "Built with Meta Llama 3"),),
    ),
    # ---- trained on outputs (distillation, synthetic data)
    Scenario(
        "gemma-distillation-via-trained-on-outputs",
        [M("acme/student", "apache-2.0", outputs=("google/gemma-2-9b",)), GEMMA],
        Verdict.CONFLICT,
        must=(
            "a model trained on outputs of a Gemma Terms of Use model is its derivative",
            "distilled from outputs of google/gemma-2-9b",
        ),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
        obligations=((ObligationKind.NOTICE_LINE, "Gemma is provided under"),),
    ),
    Scenario(
        "gemma-synthetic-data-via-generated-by",
        [
            M("acme/student", "apache-2.0", data=("acme/gemma-synth",)),
            D("acme/gemma-synth", "cc-by-4.0", generated_by=("google/gemma-2-9b",)),
            GEMMA,
        ],
        Verdict.CONFLICT,
        must=("datasets/acme/gemma-synth was generated by google/gemma-2-9b",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "llama3.1-outputs-only-naming",
        [M("acme/distil-7b", "apache-2.0", outputs=("meta-llama/Llama-3.1-8B",)), LLAMA31],
        Verdict.CONFLICT,
        must=('trained on outputs: the model name must begin with "Llama"',),
        codes=(C.NAMING_PREFIX_MISSING,),
        absent=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "llama2-outputs-banned-for-other-llms",
        [
            M(
                "acme/mistral-distil",
                "apache-2.0",
                base="mistralai/Mistral-7B-v0.1",
                outputs=("meta-llama/Llama-2-7b-hf",),
            ),
            MISTRAL,
            LLAMA2,
        ],
        Verdict.BLOCKED,
        must=("forbids using its outputs to improve any other LLM", "§1.b.v"),
        codes=(C.DISTILLATION_PROHIBITED,),
    ),
    Scenario(
        "llama2-outputs-allowed-for-llama2-derivative",
        [
            M("acme/llama2-distil", "llama2", base="meta-llama/Llama-2-7b-hf", outputs=("meta-llama/Llama-2-7b-hf",)),
            LLAMA2,
        ],
        Verdict.ALLOWED,
        absent=(C.DISTILLATION_PROHIBITED,),
    ),
    Scenario(
        "tongyi-outputs-banned",
        [M("acme/tongyi-distil", "mit", outputs=("Qwen/Qwen-72B",)), TONGYI],
        Verdict.BLOCKED,
        must=("§5(b)",),
        codes=(C.DISTILLATION_PROHIBITED,),
    ),
    Scenario(
        "mrl-outputs-research-only",
        [M("acme/mrl-distil", "apache-2.0", outputs=("mistralai/Mistral-Large-Instruct-2411",)), MRL],
        Verdict.CONFLICT,
        must=("research purposes only", "inherits a non-commercial limit", "§3.2"),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "qwen-outputs-need-display-phrase",
        [M("acme/qwen-distil", "apache-2.0", outputs=("Qwen/Qwen2.5-72B-Instruct",), readme="A small model."), QWEN72],
        Verdict.ALLOWED_WITH_WARNINGS,
        codes=(C.MISSING_DISPLAY_PHRASE,),
        obligations=((ObligationKind.DISPLAY_PHRASE, "Built with Qwen / Improved using Qwen"),),
    ),
    Scenario(
        "nvidia-outputs-are-free",
        [M("acme/nemo-distil", "apache-2.0", outputs=("nvidia/Nemotron-Mini-4B",)), NEMO],
        Verdict.ALLOWED,
    ),
    Scenario(
        "nvidia-finetune-declared-apache-warns",
        [M("acme/nemo-ft", "apache-2.0", base="nvidia/Nemotron-Mini-4B"), NEMO],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("Licensed by NVIDIA Corporation under the NVIDIA Open Model License",),
        codes=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "falcon-outputs-unknown-need-review",
        [M("acme/falcon-distil", "apache-2.0", outputs=("tiiuae/falcon-180B",)), FALCON],
        Verdict.NEEDS_REVIEW,
        codes=(C.UNVERIFIED_LICENSE_FACTS,),
    ),
    # ---- research-only and territorial
    Scenario(
        "apple-amlr-finetune",
        [M("acme/clip-ft", "apple-amlr", base="apple/mobileclip"), M("apple/mobileclip", "apple-amlr")],
        Verdict.ALLOWED,
        obligations=((ObligationKind.NON_COMMERCIAL, "research purposes only"),),
    ),
    Scenario(
        "llama3.2-vision-eu-advisory",
        [
            M(
                "acme/Llama-vision-ft",
                "llama3.2",
                base="meta-llama/Llama-3.2-11B-Vision",
                pipeline_tag="image-text-to-text",
            ),
            LLAMA32V,
        ],
        Verdict.ALLOWED,
        codes=(C.EU_RESTRICTION,),
        obligations=((ObligationKind.TERRITORIAL, "the EU"),),
    ),
    # ---- external ancestors, provenance, evidence, gating, files
    Scenario(
        "external-ancestor-kept-by-id",
        [M("acme/Llama-ext-ft", "llama3.1", base="meta-llama/Llama-3.1-70B")],
        Verdict.BLOCKED,
        must=("meta-llama/Llama-3.1-70B is outside this hub or has no facts; it is kept by id",),
        codes=(C.EXTERNAL_ANCESTOR, C.UNRESOLVED_LICENSE),
    ),
    Scenario(
        "recorded-provenance-wins-over-card",
        [
            M(
                "acme/ft",
                "apache-2.0",
                base="meta-llama/Llama-3.1-8B",
                provenance={
                    "job": "lora",
                    "relation": "finetune",
                    "inputs": {"base_models": ["mistralai/Mistral-7B-v0.1@abc123"]},
                },
            ),
            MISTRAL,
            LLAMA31,
        ],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("not among the inputs recorded by the job",),
        codes=(C.LINEAGE_CONTRADICTED,),
        absent=(C.DECLARED_LICENSE_INCOMPATIBLE,),
    ),
    Scenario(
        "tensor-hashes-verify-the-parent",
        [
            M(
                "acme/Mistral-ft",
                "apache-2.0",
                base="mistralai/Mistral-7B-v0.1",
                evidence=FileEvidence(
                    comparisons=(TensorComparison(model("mistralai/Mistral-7B-v0.1"), True, 120, 291),)
                ),
            ),
            MISTRAL,
        ],
        Verdict.ALLOWED,
        absent=(C.LINEAGE_UNVERIFIED,),
    ),
    Scenario(
        "tensor-shapes-contradict-the-parent",
        [
            M(
                "acme/odd-ft",
                "apache-2.0",
                base="meta-llama/Llama-3.1-8B",
                evidence=FileEvidence(comparisons=(TensorComparison(model("meta-llama/Llama-3.1-8B"), False),)),
            ),
            LLAMA31,
        ],
        Verdict.ALLOWED_WITH_WARNINGS,
        must=("tensor shapes differ from the claimed parent's",),
        codes=(C.LINEAGE_CONTRADICTED,),
    ),
    Scenario(
        "gated-base-ungated-finetune",
        [
            M("acme/Llama-ungated", "llama3.1", base="meta-llama/Llama-3.1-8B"),
            M("meta-llama/Llama-3.1-8B", "llama3.1", gated=True),
        ],
        Verdict.ALLOWED_WITH_WARNINGS,
        codes=(C.GATING_MISMATCH,),
    ),
    Scenario(
        "card-and-license-file-disagree",
        [M("acme/Llama-relabelled", "apache-2.0", license_file="llama3.1")],
        Verdict.CONFLICT,
        must=("the card declares apache-2.0 but the LICENSE file is Llama 3.1 Community License Agreement",),
        codes=(C.LICENSE_FILE_MISMATCH,),
    ),
    Scenario(
        "missing-notice-and-license-copy",
        [
            M(
                "acme/Llama-ft",
                "llama3.1",
                base="meta-llama/Llama-3.1-8B",
                files=("README.md", "LICENSE", "model.safetensors"),
                notice="",
            ),
            LLAMA31,
        ],
        Verdict.ALLOWED_WITH_WARNINGS,
        codes=(C.MISSING_NOTICE,),
        absent=(C.MISSING_LICENSE_COPY,),
    ),
    Scenario(
        "lineage-cycle-is-ignored",
        [M("acme/a", "mit", base="acme/b"), M("acme/b", "mit", base="acme/a")],
        Verdict.ALLOWED_WITH_WARNINGS,
        codes=(C.LINEAGE_CYCLE,),
    ),
]


def test_there_are_at_least_forty_scenarios() -> None:
    assert len(SCENARIOS) >= 40
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.id)
def test_scenario(s: Scenario) -> None:
    decision = decide(s.facts, s.mode)
    text = everything(decision)
    codes = {c.code for c in decision.conflicts}
    assert decision.verdict is s.verdict, "\n".join(f"{c.severity}: {c.message}" for c in decision.conflicts)
    for needle in s.must:
        assert needle in text, f"{needle!r} not in the decision"
    for code in s.codes:
        assert code in codes, f"{code} missing from {sorted(codes)}"
    for code in s.absent:
        assert code not in codes, f"{code} unexpectedly present"
    for kind, value in s.obligations:
        assert any(o.kind is kind and value in o.value and o.binding for o in decision.obligations), (kind, value)
    # Every verdict records the mode and the engine version, and every line has a reason.
    assert decision.mode is s.mode and decision.engine_version and decision.kb_version
    assert all(reasons for _, reasons in decision.lines())


def test_reasons_cite_ancestor_license_and_clause() -> None:
    decision = decide([M("acme/Llama-chat", "apache-2.0", base="meta-llama/Llama-3.1-8B"), LLAMA31])
    conflict = next(c for c in decision.conflicts if c.code is C.DECLARED_LICENSE_INCOMPATIBLE)
    (reason,) = conflict.reasons
    assert reason.ancestor == model("meta-llama/Llama-3.1-8B")
    assert reason.license_id == "llama3.1"
    assert reason.clause == "Llama 3.1 Community License Agreement §1.a and §1.b.i"
    assert "github.com/meta-llama/llama-models" in reason.source
    assert reason.channel is Channel.ADAPTATION and reason.depth == 1


def test_effective_terms_take_the_most_restrictive_value() -> None:
    decision = decide([M("acme/nc-lm", "mit", data=("acme/news-nc",)), D("acme/news-nc", "cc-by-nc-4.0")])
    assert decision.terms.commercial_use.value is Tri.NO
    assert decision.terms.commercial_use.reasons[0].ancestor == dataset("acme/news-nc")
    lenient = decide([M("acme/nc-lm", "mit", data=("acme/news-nc",)), D("acme/news-nc", "cc-by-nc-4.0")], LENIENT)
    assert lenient.terms.commercial_use.value is Tri.YES
    advisory = [o for o in lenient.obligations if o.kind is ObligationKind.NON_COMMERCIAL]
    assert advisory and not advisory[0].binding


def test_thresholds_keep_each_licensor_and_the_lowest_first() -> None:
    merged = [
        M(
            "acme/Llama-qwen-merge",
            "other",
            license_name="commons-combined-llama3-1-qwen",
            base=["meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-72B-Instruct"],
        ),
        LLAMA31,
        QWEN72,
    ]
    terms = decide(merged).terms
    assert [(t.value, t.licensor) for t in terms.user_thresholds] == [
        (100_000_000, "Alibaba Cloud"),
        (700_000_000, "Meta"),
    ]


# ---- the concrete questions


LLAMA_FT = [M("acme/Llama-3.1-acme-chat", "llama3.1", base="meta-llama/Llama-3.1-8B"), LLAMA31]


@pytest.mark.parametrize(
    ("question", "users", "expected", "needle"),
    [
        (Question.MONTHLY_USERS, 800_000_000, AnswerValue.NO, "a separate license from Meta"),
        (Question.MONTHLY_USERS, 5_000_000, AnswerValue.CONDITIONAL, "at most 700,000,000 monthly active users"),
        (Question.COMMERCIAL_USE, None, AnswerValue.CONDITIONAL, "700M monthly active users"),
        (Question.OFFER_AS_SERVICE, None, AnswerValue.CONDITIONAL, "Built with Llama"),
        (Question.REDISTRIBUTE, None, AnswerValue.CONDITIONAL, "Llama 3.1 is licensed under"),
        (Question.REDISTRIBUTE_QUANTIZED, None, AnswerValue.CONDITIONAL, "keep exactly the license"),
        (Question.CREATE_DERIVATIVE, None, AnswerValue.CONDITIONAL, "'Llama' name prefix"),
    ],
)
def test_questions_about_a_llama_finetune(
    question: Question, users: int | None, expected: AnswerValue, needle: str
) -> None:
    lineage = build_lineage(LLAMA_FT)
    out = ask(lineage, model("acme/Llama-3.1-acme-chat"), question, monthly_active_users=users)
    assert out.answer is expected, out.conditions
    assert needle in "\n".join(out.conditions)
    assert out.reasons and out.mode is STRICT and out.engine_version


def test_questions_qwen_threshold_and_nc_and_nd() -> None:
    qwen = build_lineage([M("acme/qwen-ft", "other", license_name="qwen", base="Qwen/Qwen2.5-72B-Instruct"), QWEN72])
    assert (
        ask(qwen, model("acme/qwen-ft"), Question.MONTHLY_USERS, monthly_active_users=150_000_000).answer
        is AnswerValue.NO
    )
    nc = decide([M("acme/nc-lm", "cc-by-nc-4.0", data=("acme/news-nc",)), D("acme/news-nc", "cc-by-nc-4.0")])
    assert answer(nc, Question.COMMERCIAL_USE).answer is AnswerValue.NO
    nd = build_lineage([M("acme/nd-model", "cc-by-nd-4.0")])
    assert ask(nd, model("acme/nd-model"), Question.REDISTRIBUTE).answer is AnswerValue.CONDITIONAL
    assert ask(nd, model("acme/nd-model"), Question.REDISTRIBUTE_QUANTIZED).answer is AnswerValue.NO
    mrl = build_lineage([MRL])
    assert ask(mrl, MRL.ref, Question.OFFER_AS_SERVICE).answer is AnswerValue.NO
    unknown = build_lineage([M("acme/custom", "other", license_name="acme-special-terms")])
    assert ask(unknown, model("acme/custom"), Question.COMMERCIAL_USE).answer is AnswerValue.NEEDS_REVIEW


def test_blocked_repo_may_not_be_redistributed() -> None:
    lineage = build_lineage([M("acme/mistral-distil", "apache-2.0", outputs=("meta-llama/Llama-2-7b-hf",)), LLAMA2])
    out = ask(lineage, model("acme/mistral-distil"), Question.REDISTRIBUTE)
    assert out.answer is AnswerValue.NO
    assert any("improve any other LLM" in c for c in out.conditions)


def test_lineage_built_directly_and_from_cards_agree() -> None:
    child, parent = model("acme/Llama-x"), model("meta-llama/Llama-3.1-8B")
    direct = Lineage.of(
        [RepoNode(child, license="llama3.1"), RepoNode(parent, license="llama3.1")],
        [
            Edge(
                child,
                parent,
                Relation.FINETUNE,
                (EdgeSource.DECLARED,),
                EdgeStatus.UNVERIFIED,
                ("relation not declared; inferred as finetune (the Hub's default)",),
            )
        ],
    )
    from_cards = build_lineage([M("acme/Llama-x", "llama3.1", base="meta-llama/Llama-3.1-8B"), LLAMA31])
    assert evaluate(direct, child).obligations == evaluate(from_cards, child).obligations


def test_unknown_repo_raises() -> None:
    with pytest.raises(KeyError):
        evaluate(build_lineage([MIT_BASE]), RepoRef(RepoKind.MODEL, "nobody/nothing"))
