"""`/api/whoami-v2`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from commons.accounts.users import get_user
from commons.api.deps import ActorDep, SessionDep
from commons.errors import Unauthorized

router = APIRouter()


@router.get("/api/whoami-v2")
def whoami(actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    if actor is None:
        raise Unauthorized("Invalid credentials in Authorization header")
    user = get_user(session, actor.name)
    assert user is not None
    token: dict[str, Any] = {"displayName": actor.token_name, "role": actor.role}
    if actor.scopes is not None:
        # The Hub's shape for fine-grained tokens: what each scoped entity allows.
        token["fineGrained"] = {"scoped": [
            {"entity": _entity(s.resource), "permissions": sorted(s.actions)} for s in actor.scopes
        ], "global": []}
    return {
        "type": "user",
        "id": str(user.id),
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "emailVerified": user.email is not None,
        "isPro": False,
        "isAdmin": user.is_admin,
        "orgs": [{"type": "org", "name": org, "fullname": org, "roleInOrg": role.value}
                 for org, role in sorted(actor.orgs.items())],
        "auth": {"type": "access_token", "accessToken": token},
    }


def _entity(resource: str) -> dict[str, str]:
    kind, sep, name = resource.partition(":")
    return {"type": kind, "name": name} if sep else {"type": "namespace", "name": resource}
