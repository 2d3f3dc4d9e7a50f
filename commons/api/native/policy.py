"""Licenses, lineage and openness of a repo (`/api/commons/license|lineage|openness/...`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from commons.accounts.actors import Role
from commons.accounts.site import get_setting_for, set_setting_for
from commons.api.audit import audit
from commons.api.deps import ActorDep, ReposDep, ServicesDep, SessionDep
from commons.errors import InvalidRequest, PermissionDenied, Unauthorized
from commons.hub import license_facts
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need
from commons.policy import (
    Mode,
    Question,
    RepoContents,
    answer,
    classify_openness,
    evaluate,
    notice_text,
    suggest_license,
    to_jsonable,
)

router = APIRouter(prefix="/api/commons")
REPO = "/{repo_type}/{namespace}/{name}"


def _mode(mode: str | None) -> Mode | None:
    if mode is None:
        return None
    try:
        return Mode(mode)
    except ValueError:
        raise InvalidRequest("mode must be 'strict' or 'lenient'") from None


def _lineage(repos: ReposDep, actor: ActorDep, repo_type: str, namespace: str, name: str, revision: str) -> Any:
    ref = RepoRef.parse(RepoType.from_plural(repo_type), f"{namespace}/{name}")
    repo = repos.get(actor, ref, Need.SEE)
    lineage, root = license_facts.gather(repos, actor, repo, revision)
    return repo, lineage, root


@router.get("/license" + REPO)
def license_decision(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
                     request: Request, revision: str = "main", mode: str | None = None) -> dict[str, Any]:
    """The verdict, effective terms, obligations and conflicts, each line with its reasons."""
    repo, lineage, root = _lineage(repos, actor, repo_type, namespace, name, revision)
    chosen = _mode(mode) or license_facts.policy_for(repos.session, repo.namespace).mode
    decision = evaluate(lineage, root, mode=chosen)
    return {
        "decision": to_jsonable(decision),
        "lines": [{"text": text, "reasons": [to_jsonable(r) for r in reasons]} for text, reasons in decision.lines()],
        "notice": notice_text(decision, hub_url=str(request.base_url).rstrip("/")),
        "suggestedLicense": suggest_license(decision).card_fields(),
    }


@router.get("/license" + REPO + "/ask")
def license_question(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
                     question: str, users: int | None = None, revision: str = "main",
                     mode: str | None = None) -> dict[str, Any]:
    """May I use it commercially / offer it as a service / redistribute a quantized copy / serve N users?"""
    try:
        q = Question(question)
    except ValueError:
        raise InvalidRequest(f"question must be one of {[x.value for x in Question]}") from None
    repo, lineage, root = _lineage(repos, actor, repo_type, namespace, name, revision)
    chosen = _mode(mode) or license_facts.policy_for(repos.session, repo.namespace).mode
    result: dict[str, Any] = to_jsonable(answer(evaluate(lineage, root, mode=chosen), q, monthly_active_users=users))
    return result


@router.get("/lineage" + REPO)
def lineage_graph(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
                  revision: str = "main") -> dict[str, Any]:
    """The family tree: nodes (repos at revisions, hosted or kept by id) and edges with their status."""
    _, lineage, root = _lineage(repos, actor, repo_type, namespace, name, revision)
    return {"root": to_jsonable(root), "nodes": to_jsonable(lineage.nodes), "edges": to_jsonable(lineage.edges)}


@router.get("/openness" + REPO)
def openness(repo_type: str, namespace: str, name: str, actor: ActorDep, repos: ReposDep,
             revision: str = "main") -> dict[str, Any]:
    """Model Openness Framework class, with the components present or missing and their licenses."""
    repo, lineage, root = _lineage(repos, actor, repo_type, namespace, name, revision)
    facts = license_facts.facts_at(repos, repo, revision)
    git = repos.git(repo)
    refs = git.refs()
    contents = RepoContents(root, facts.files or (), dict(facts.card or {}),
                            revisions=tuple(n for n, _, _ in refs["branches"] + refs["tags"]),
                            produced_by_commons_job=facts.provenance is not None)
    decision = evaluate(lineage, root, mode=license_facts.policy_for(repos.session, repo.namespace).mode)
    report: dict[str, Any] = to_jsonable(classify_openness(contents, lineage, decision))
    return report


@router.get("/policy/{namespace}")
def get_policy(namespace: str, session: SessionDep) -> dict[str, Any]:
    return {k: get_setting_for(session, namespace, k) for k in ("license_mode", "license_on_conflict")}


@router.put("/policy/{namespace}")
def put_policy(request: Request, namespace: str, session: SessionDep, actor: ActorDep, services: ServicesDep,
               body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """An organisation's admins choose strict or lenient, and warn or block on license conflicts."""
    if actor is None:
        raise Unauthorized("Authentication required")
    is_admin = actor.is_admin or actor.name == namespace or actor.orgs.get(namespace) == Role.ADMIN
    if not is_admin or not actor.can_write or actor.scopes is not None:
        raise PermissionDenied(f"Only admins of {namespace} can set its license policy")
    for key, value in body.items():
        try:
            set_setting_for(session, namespace, key, value)
        except (KeyError, ValueError) as exc:
            raise InvalidRequest(str(exc)) from None
    audit(request, "policy.set", f"namespace:{namespace}", namespace, **body)
    return get_policy(namespace, session)
