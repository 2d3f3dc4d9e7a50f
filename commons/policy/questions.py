"""Concrete questions about a repo, answered from its Decision: "may I …?"

* may I use it commercially?               `Question.COMMERCIAL_USE`
* may I use it with N monthly users?       `Question.MONTHLY_USERS` + `monthly_active_users=N`
* may I offer it as a service?             `Question.OFFER_AS_SERVICE`
* may I redistribute it (as it is)?        `Question.REDISTRIBUTE`
* may I redistribute a quantized copy?     `Question.REDISTRIBUTE_QUANTIZED` (evaluates the copy)
* may I make a derivative of it?           `Question.CREATE_DERIVATIVE`

Each `Answer` is yes / conditional (with the conditions) / no / needs review, with reasons.
The user thresholds (Llama 700M, Qwen 100M) count the licensee's (and affiliates') monthly active
users in the calendar month before the licensed version's release date, not a product's users.
"""

from __future__ import annotations

from collections.abc import Sequence

from commons.policy.facts import Edge, EdgeSource, EdgeStatus, Lineage, Mode, Relation, RepoKind, RepoNode, RepoRef
from commons.policy.licenses import KnowledgeBase
from commons.policy.propagation import evaluate
from commons.policy.terms import Tri
from commons.policy.verdicts import (
    Answer,
    AnswerValue,
    Conflict,
    ConflictCode,
    Decision,
    ObligationKind,
    Permission,
    Question,
    Reason,
    Severity,
    Verdict,
)

_UNKNOWN_TERMS = (ConflictCode.UNRESOLVED_LICENSE, ConflictCode.UNVERIFIED_LICENSE_FACTS)
# Obligations that are conditions of redistributing (as opposed to using) the repo.
_REDISTRIBUTION_DUTIES = (
    ObligationKind.LICENSE_COPY,
    ObligationKind.NOTICE_LINE,
    ObligationKind.ATTRIBUTION,
    ObligationKind.DISPLAY_PHRASE,
    ObligationKind.NAMING_PREFIX,
    ObligationKind.USE_RESTRICTIONS,
    ObligationKind.SHARE_ALIKE,
    ObligationKind.MARK_CHANGES,
)


def ask(
    lineage: Lineage,
    repo: RepoRef,
    question: Question,
    *,
    mode: Mode = Mode.STRICT,
    monthly_active_users: int | None = None,
    kb: KnowledgeBase | None = None,
) -> Answer:
    """Answer `question` about `repo` (evaluates it, and for a quantized copy, the copy)."""
    if question is Question.REDISTRIBUTE_QUANTIZED:
        return _quantized(lineage, repo, mode, kb)
    return answer(evaluate(lineage, repo, mode=mode, kb=kb), question, monthly_active_users=monthly_active_users)


def answer(decision: Decision, question: Question, *, monthly_active_users: int | None = None) -> Answer:
    """Answer a question from an existing Decision (all questions but REDISTRIBUTE_QUANTIZED)."""
    if question is Question.REDISTRIBUTE_QUANTIZED:
        raise ValueError("a quantized copy needs the lineage: use ask()")
    if question is Question.COMMERCIAL_USE:
        return _from_permission(decision, question, decision.terms.commercial_use, monthly_active_users)
    if question is Question.MONTHLY_USERS:
        if monthly_active_users is None:
            raise ValueError("MONTHLY_USERS needs monthly_active_users")
        return _from_permission(decision, question, decision.terms.commercial_use, monthly_active_users)
    if question is Question.OFFER_AS_SERVICE:
        out = _from_permission(decision, question, decision.terms.hosting, monthly_active_users)
        if out.answer in (AnswerValue.YES, AnswerValue.CONDITIONAL):
            extra = _duties(
                decision,
                (ObligationKind.USE_RESTRICTIONS, ObligationKind.DISPLAY_PHRASE, ObligationKind.NON_COMMERCIAL),
            )
            value = AnswerValue.CONDITIONAL if extra[0] or out.answer is AnswerValue.CONDITIONAL else AnswerValue.YES
            return _answer(
                decision, question, value, out.conditions + extra[0], out.reasons + extra[1], monthly_active_users
            )
        return out
    if question is Question.CREATE_DERIVATIVE:
        return _from_permission(decision, question, decision.terms.derivatives, monthly_active_users)
    return _redistribute(decision, question)


def _from_permission(decision: Decision, question: Question, perm: Permission, users: int | None) -> Answer:
    if perm.value is Tri.NO:
        return _answer(decision, question, AnswerValue.NO, perm.conditions, perm.reasons, users)
    unknown = [c for c in decision.conflicts if c.code in _UNKNOWN_TERMS and c.severity.rank >= Severity.REVIEW.rank]
    if unknown:
        return _answer(
            decision, question, AnswerValue.NEEDS_REVIEW, tuple(c.message for c in unknown), _reasons(unknown), users
        )
    if users is not None:
        over = [t for t in decision.terms.user_thresholds if users > t.value]
        if over:
            conditions = tuple(
                f"more than {t.value:,} monthly active users: a separate license from {t.licensor} is needed "
                f"({t.license_id}; counted for the licensee and affiliates, the month before the release date)"
                for t in over
            )
            return _answer(decision, question, AnswerValue.NO, conditions, tuple(t.reason for t in over), users)
    conditions = perm.conditions
    reasons = perm.reasons
    under = [t for t in decision.terms.user_thresholds if users is None or users <= t.value]
    if under:
        conditions += tuple(
            f"at most {t.value:,} monthly active users (licensee and affiliates) without a license from {t.licensor}"
            for t in under
        )
        reasons += tuple(t.reason for t in under)
    value = AnswerValue.YES if perm.value is Tri.YES and not conditions else AnswerValue.CONDITIONAL
    return _answer(decision, question, value, conditions, reasons, users)


def _redistribute(decision: Decision, question: Question) -> Answer:
    if decision.verdict is Verdict.BLOCKED:
        blockers = decision.conflicts_at_least(Severity.BLOCKER)
        return _answer(decision, question, AnswerValue.NO, tuple(c.message for c in blockers), _reasons(blockers), None)
    perm = decision.terms.redistribution
    if perm.value is Tri.NO:
        return _answer(decision, question, AnswerValue.NO, perm.conditions, perm.reasons, None)
    if decision.verdict is Verdict.NEEDS_REVIEW:
        review = decision.conflicts_at_least(Severity.REVIEW)
        return _answer(
            decision, question, AnswerValue.NEEDS_REVIEW, tuple(c.message for c in review), _reasons(review), None
        )
    conditions, reasons = _duties(decision, _REDISTRIBUTION_DUTIES)
    conflicts = decision.conflicts_at_least(Severity.CONFLICT)
    conditions = tuple(f"fix first: {c.message}" for c in conflicts) + perm.conditions + conditions
    reasons = _reasons(conflicts) + perm.reasons + reasons
    value = AnswerValue.YES if perm.value is Tri.YES and not conditions else AnswerValue.CONDITIONAL
    return _answer(decision, question, value, conditions, reasons, None)


def _quantized(lineage: Lineage, repo: RepoRef, mode: Mode, kb: KnowledgeBase | None) -> Answer:
    node = lineage.node(repo)
    if node is None:
        raise KeyError(f"{repo} is not in the lineage graph")
    if node.ref.kind is not RepoKind.MODEL:
        raise ValueError("only models have quantized copies")
    # What-if: a copy that keeps the exact license fields, named so that naming prefixes still hold.
    copy = RepoNode(
        RepoRef(RepoKind.MODEL, f"{node.ref.repo_id}-quantized", "what-if"),
        license=node.license,
        license_name=node.license_name,
        license_file=node.license_file,
        gated_terms=node.gated_terms,
        eu_disallowed=node.eu_disallowed,
        multimodal=node.multimodal,
    )
    edge = Edge(copy.ref, node.ref, Relation.QUANTIZED, (EdgeSource.RECORDED,), EdgeStatus.VERIFIED)
    decision = evaluate(lineage.with_node(copy, [edge]), copy.ref, mode=mode, kb=kb)
    out = _redistribute(decision, Question.REDISTRIBUTE_QUANTIZED)
    keep = f"keep exactly the license of {node.ref} ({decision.declared_license}) on the copy"
    conditions = (keep, *out.conditions) if out.answer is not AnswerValue.NO else out.conditions
    value = AnswerValue.CONDITIONAL if out.answer is AnswerValue.YES else out.answer
    return Answer(out.question, value, conditions, out.reasons, mode, decision.engine_version)


def _duties(decision: Decision, kinds: tuple[ObligationKind, ...]) -> tuple[tuple[str, ...], tuple[Reason, ...]]:
    conditions: list[str] = []
    reasons: list[Reason] = []
    for ob in decision.obligations:
        if ob.binding and ob.kind in kinds:
            conditions.append(f"{ob.kind.value.replace('_', ' ')}: {ob.value}")
            reasons.extend(ob.reasons)
    return tuple(conditions), tuple(reasons)


def _reasons(conflicts: Sequence[Conflict]) -> tuple[Reason, ...]:
    return tuple(r for c in conflicts for r in c.reasons)


def _answer(
    decision: Decision,
    question: Question,
    value: AnswerValue,
    conditions: tuple[str, ...],
    reasons: tuple[Reason, ...],
    users: int | None,
) -> Answer:
    return Answer(
        question,
        value,
        tuple(dict.fromkeys(conditions)),
        tuple(sorted(set(reasons))),
        decision.mode,
        decision.engine_version,
        users,
    )
