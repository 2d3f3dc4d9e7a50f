"""Reading the audit log: org admins see their organisation's events, site admins everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from commons.accounts import audit as log
from commons.accounts.actors import Actor, Role
from commons.api.deps import ActorDep, ServicesDep, SessionDep
from commons.errors import PermissionDenied, Unauthorized

router = APIRouter(prefix="/api/commons/audit")


def _allowed_namespace(actor: Actor | None, namespace: str | None) -> str | None:
    if actor is None:
        raise Unauthorized("Authentication required")
    if actor.scopes is not None:
        raise PermissionDenied("Fine-grained tokens cannot read the audit log")
    if actor.is_admin:
        return namespace
    if namespace is not None and (actor.orgs.get(namespace) == Role.ADMIN or namespace == actor.name):
        return namespace
    raise PermissionDenied("The audit log is for organisation admins (with ?namespace=ORG) and site admins")


@router.get("")
def events(session: SessionDep, actor: ActorDep, namespace: str | None = None, limit: int = 100,
           before: int | None = None) -> list[dict[str, Any]]:
    ns = _allowed_namespace(actor, namespace)
    return [log.as_json(e) for e in log.query(session, ns, min(max(limit, 1), 1000), before)]


@router.get("/export")
def export(services: ServicesDep, session: SessionDep, actor: ActorDep, namespace: str | None = None
           ) -> StreamingResponse:
    ns = _allowed_namespace(actor, namespace)

    def lines() -> Iterator[str]:
        with services.session() as s:
            yield from log.export_jsonl(s, ns)

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})


@router.get("/verify")
def verify(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    if actor is None:
        raise Unauthorized("Authentication required")
    if not actor.is_admin or actor.scopes is not None:
        raise PermissionDenied("Only site administrators can verify the whole chain")
    result = log.verify(session)
    return {"ok": result.ok, "rows": result.rows, "badRow": result.bad_row, "reason": result.reason}
