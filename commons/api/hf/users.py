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
    return {
        "type": "user",
        "id": str(user.id),
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "emailVerified": user.email is not None,
        "isPro": False,
        "isAdmin": user.is_admin,
        "orgs": [],
        "auth": {
            "type": "access_token",
            "accessToken": {"displayName": actor.token_name, "role": actor.role},
        },
    }
