"""License pages: the "License" panel on every card page and the "Lineage & license" tab.

Both read the same Decision the API (`/api/commons/license/...`) gives, gathered from the facts the
viewer may see (`hub.license_facts.gather`) and evaluated in the namespace's mode unless the page
asks for the other one. The tab draws the family tree (`web.lineage_graph`), lists every line of
the decision with the ancestor and clause that cause it, the obligations, the NOTICE a derivative
must carry, and answers the concrete questions: commercial use, offering it as a service,
redistributing a quantized copy, and use with N monthly active users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from commons.errors import CommonsError, InvalidRequest
from commons.hub import license_facts
from commons.hub.gitrepo import MAIN, GitRepo
from commons.hub.ids import RepoType
from commons.policy import (
    Answer,
    Decision,
    Lineage,
    Mode,
    ObligationKind,
    OpennessReport,
    Question,
    Reason,
    RepoContents,
    RepoRef,
    Severity,
    Verdict,
    answer,
    ask,
    classify_openness,
    evaluate,
    notice_text,
    suggest_license,
)
from commons.web.deps import ServicesDep
from commons.web.lineage_graph import EDGE_KIND_LABELS, EDGE_LOOK_LABELS, layout_lineage
from commons.web.pages.repo import site_url
from commons.web.panels import Panel, Tab, register_panel, register_tab
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render

VERDICT_LABELS = {
    Verdict.ALLOWED: "Allowed",
    Verdict.ALLOWED_WITH_WARNINGS: "Allowed, with warnings",
    Verdict.NEEDS_REVIEW: "Needs review",
    Verdict.CONFLICT: "Conflict",
    Verdict.BLOCKED: "Blocked",
}
QUESTION_LABELS = {
    Question.COMMERCIAL_USE: "May I use it commercially?",
    Question.OFFER_AS_SERVICE: "May I offer it as a service?",
    Question.REDISTRIBUTE: "May I redistribute it?",
    Question.REDISTRIBUTE_QUANTIZED: "May I redistribute a quantized copy?",
    Question.MONTHLY_USERS: "May I use it with {users:,} monthly active users?",
}
# What the panel shows of the obligations: those a user acts on, most pressing first.
KEY_OBLIGATIONS = (
    ObligationKind.NON_COMMERCIAL,
    ObligationKind.NO_DERIVATIVES,
    ObligationKind.DISPLAY_PHRASE,
    ObligationKind.NAMING_PREFIX,
    ObligationKind.SHARE_ALIKE,
    ObligationKind.USER_THRESHOLD,
    ObligationKind.USE_RESTRICTIONS,
    ObligationKind.TERRITORIAL,
    ObligationKind.NO_IMPROVE_OTHER_MODELS,
)
DEFAULT_USERS = 1_000_000


@dataclass(frozen=True)
class Line:
    """One line of the decision as the page shows it: text, how serious, and why."""

    text: str
    severity: str  # a CSS class: info, warning, review, conflict, blocker, or "" for terms
    reasons: tuple[Reason, ...]


def _decide(view: RepoView, commit: str, mode: Mode | None) -> tuple[Decision, Lineage, RepoRef]:
    lineage, root = license_facts.gather(view.repos, view.viewer.actor, view.repo, commit)
    chosen = mode or license_facts.policy_for(view.repos.session, view.repo.namespace).mode
    return evaluate(lineage, root, mode=chosen), lineage, root


def _key_obligations(decision: Decision) -> list[tuple[str, str]]:
    out = []
    for kind in KEY_OBLIGATIONS:
        for ob in decision.obligations_of(kind):
            out.append((kind.value.replace("_", " "), ob.value))
    return out


def _panel(view: RepoView, git: GitRepo, commit: str | None) -> dict[str, Any] | None:
    """The card page's License panel: declared license, verdict, conflicts, key obligations."""
    if commit is None:
        return None
    try:
        decision, _, _ = _decide(view, commit, None)
    except CommonsError as exc:
        return {"error": exc.message, "url": f"{view.base}/license"}
    return {
        "decision": decision,
        "verdict": VERDICT_LABELS[decision.verdict],
        "conflicts": [c.message for c in decision.conflicts_at_least(Severity.REVIEW)],
        "warnings": sum(c.severity is Severity.WARNING for c in decision.conflicts),
        "obligations": _key_obligations(decision),
        "suggested": suggest_license(decision).card_fields(),
        "url": f"{view.base}/license",
        "error": None,
    }


def _lines(decision: Decision) -> tuple[list[Line], list[Line], list[Line]]:
    """The decision's lines, split into effective terms, obligations and findings."""
    lines = decision.lines()
    n_terms = 5 + len(decision.terms.user_thresholds)
    n_obligations = len(decision.obligations)
    terms = [Line(t, "", r) for t, r in lines[:n_terms]]
    obligations = [Line(t, "" if o.binding else "advisory", r)
                   for (t, r), o in zip(lines[n_terms:n_terms + n_obligations], decision.obligations, strict=True)]
    findings = [Line(t, c.severity.value, r)
                for (t, r), c in zip(lines[n_terms + n_obligations:], decision.conflicts, strict=True)]
    return terms, obligations, findings


def _answers(decision: Decision, lineage: Lineage, root: RepoRef, users: int) -> list[tuple[str, Answer]]:
    out = []
    for q in (Question.COMMERCIAL_USE, Question.OFFER_AS_SERVICE, Question.REDISTRIBUTE):
        out.append((QUESTION_LABELS[q], answer(decision, q)))
    if root.kind.value == RepoType.MODEL.value:
        quantized = ask(lineage, root, Question.REDISTRIBUTE_QUANTIZED, mode=decision.mode)
        out.append((QUESTION_LABELS[Question.REDISTRIBUTE_QUANTIZED], quantized))
    users_answer = answer(decision, Question.MONTHLY_USERS, monthly_active_users=users)
    out.append((QUESTION_LABELS[Question.MONTHLY_USERS].format(users=users), users_answer))
    return out


def _openness(view: RepoView, git: GitRepo, commit: str, lineage: Lineage, root: RepoRef,
              decision: Decision) -> OpennessReport | None:
    """The Model Openness Framework class, as the API's `/openness` gives it (models only)."""
    if view.kind is not RepoType.MODEL:
        return None
    facts = license_facts.facts_at(view.repos, view.repo, commit)
    refs = git.refs()
    contents = RepoContents(root, facts.files or (), dict(facts.card or {}),
                            revisions=tuple(n for n, _, _ in refs["branches"] + refs["tags"]),
                            produced_by_commons_job=facts.provenance is not None)
    return classify_openness(contents, lineage, decision)


@repo_route("/license")
def license_page(request: Request, view: RepoViewDep, services: ServicesDep, mode: str | None = None,
                 users: int = DEFAULT_USERS, rev: str = MAIN) -> Response:
    """Lineage & license: the family tree, the decision with its reasons, NOTICE, and answers."""
    try:
        chosen = Mode(mode) if mode else None
    except ValueError:
        raise InvalidRequest("mode must be 'strict' or 'lenient'") from None
    if users < 0:
        raise InvalidRequest("users must be a non-negative number")
    git = view.git()
    commit = git.resolve(rev)
    decision, lineage, root = _decide(view, commit, chosen)
    policy = license_facts.policy_for(view.repos.session, view.repo.namespace)
    terms, obligations, findings = _lines(decision)
    suggestion = suggest_license(decision)
    return render(
        request, "pages/license.html", view=view, repo=view.repo, tab="license", rev=rev, commit=commit,
        decision=decision, verdict=VERDICT_LABELS[decision.verdict], graph=layout_lineage(lineage, root),
        kind_labels=EDGE_KIND_LABELS, look_labels=EDGE_LOOK_LABELS, terms=terms, obligations=obligations,
        findings=findings, answers=_answers(decision, lineage, root, users), users=users,
        notice=notice_text(decision, hub_url=site_url(request, services)), suggestion=suggestion, policy=policy,
        modes=list(Mode), openness=_openness(view, git, commit, lineage, root, decision),
    )


register_panel(Panel("license", "partials/license_panel.html", _panel, order=10))
register_tab(Tab("license", "Lineage & license", "shield", "license", order=30))
