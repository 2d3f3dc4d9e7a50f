"""Tiny builders for policy tests: cards as keyword arguments, a lineage in one call."""

from __future__ import annotations

from typing import Any

from commons.policy import (
    Decision,
    FileEvidence,
    Mode,
    RepoFacts,
    RepoKind,
    RepoRef,
    build_lineage,
    evaluate,
)


def M(
    repo_id: str,
    license: str | list[str] | None = None,
    *,
    base: str | list[str] | None = None,
    rel: str | None = None,
    data: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    license_name: str | None = None,
    gated: bool = False,
    provenance: dict[str, Any] | None = None,
    evidence: FileEvidence | None = None,
    license_file: str | None = None,
    files: tuple[str, ...] | None = None,
    notice: str | None = None,
    readme: str | None = None,
    hosted: bool = True,
    **card: Any,
) -> RepoFacts:
    """A model repo's facts; keyword arguments become card fields."""
    meta: dict[str, Any] = dict(card)
    if license is not None:
        meta["license"] = license
    if license_name is not None:
        meta["license_name"] = license_name
    if base is not None:
        meta["base_model"] = base
    if rel is not None:
        meta["base_model_relation"] = rel
    if data:
        meta["datasets"] = list(data)
    if outputs:
        meta["trained_on_outputs_of"] = list(outputs)
    if gated:
        meta["extra_gated_prompt"] = "You agree to the license terms."
    return RepoFacts(
        RepoRef(RepoKind.MODEL, repo_id),
        card=meta,
        provenance=provenance,
        evidence=evidence,
        license_file=license_file,
        hosted=hosted,
        files=files,
        notice_text=notice,
        readme_text=readme,
    )


def D(
    repo_id: str,
    license: str | None = None,
    *,
    sources: tuple[str, ...] = (),
    generated_by: tuple[str, ...] = (),
    license_name: str | None = None,
    gated: bool = False,
) -> RepoFacts:
    """A dataset repo's facts."""
    meta: dict[str, Any] = {}
    if license is not None:
        meta["license"] = license
    if license_name is not None:
        meta["license_name"] = license_name
    if sources:
        meta["source_datasets"] = list(sources)
    if generated_by:
        meta["generated_by"] = list(generated_by)
    if gated:
        meta["extra_gated_prompt"] = "You agree to use this data for research only."
    return RepoFacts(RepoRef(RepoKind.DATASET, repo_id), card=meta)


def decide(facts: list[RepoFacts], mode: Mode = Mode.STRICT, target: RepoRef | None = None) -> Decision:
    """Evaluate the first repo (or `target`) in the lineage built from `facts`."""
    return evaluate(build_lineage(facts), target or facts[0].ref, mode=mode)


def everything(decision: Decision) -> str:
    """All text a user could see in a decision: lines, reasons, clauses and paths."""
    parts: list[str] = []
    for line, reasons in decision.lines():
        parts.append(line)
        for r in reasons:
            parts += [r.text, r.clause, r.license_id, str(r.ancestor), *r.path]
    return "\n".join(parts)
