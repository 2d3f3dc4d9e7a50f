"""Who may use a model server: the hub's own tokens, checked against the hub's database.

A request is let in when its `Authorization: Bearer <token>` names a Commons token whose user may
read the served repo's files (the same rule as downloading them), or when it carries a viewer
assertion signed with the hub's secret key (the playground: the hub has already checked the
session and passes on who is looking). Anonymous requests are let in only when the server was
started with `--anonymous` and the repo is public.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from sqlalchemy.orm import Session

from commons.accounts.actors import Actor
from commons.accounts.tokens import actor_for, authenticate
from commons.accounts.users import get_user
from commons.errors import CommonsError, Unauthorized
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Need, Repos
from commons.services import Services

VIEWER_HEADER = "X-Commons-Viewer"
VIEWER_SIG_HEADER = "X-Commons-Viewer-Sig"
VIEWER_TTL_S = 60


class AccessDenied(Exception):
    """Raised when a request may not use the model; carries the OpenAI-style error it gets."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.type = "authentication_error" if status == 401 else "permission_error"


def sign_viewer(services: Services, repo_id: str, viewer: str) -> str:
    """The signature the hub sends with `X-Commons-Viewer` (the empty name is the anonymous viewer)."""
    return services.signer.sign("serve-viewer", f"{repo_id}\n{viewer}", 0, VIEWER_TTL_S)


@dataclass
class ModelAccess:
    services: Services
    repo_type: RepoType
    repo_id: str
    anonymous: bool = False

    def check(self, bearer: str | None, viewer: str | None = None, viewer_sig: str | None = None) -> str:
        """Who is asking ('anonymous' or a user name), or AccessDenied."""
        with self.services.session() as session:
            actor: Actor | None = None
            if bearer:
                try:
                    actor = authenticate(session, bearer)
                except Unauthorized:
                    raise AccessDenied(401, "Incorrect API key provided.", "invalid_api_key") from None
            elif viewer is not None and viewer_sig is not None:
                actor = self._viewer(session, viewer, viewer_sig)
                if actor is None and viewer:
                    raise AccessDenied(401, "The playground's viewer assertion is invalid or expired.",
                                       "invalid_api_key")
            elif not self.anonymous:
                raise AccessDenied(401, "You didn't provide an API key: send a Commons token as "
                                        "'Authorization: Bearer <token>'.", "missing_api_key")
            try:
                Repos(session, self.services.storage).get(actor, RepoRef.parse(self.repo_type, self.repo_id),
                                                          Need.FILES)
            except CommonsError:
                raise AccessDenied(403, f"This token may not read {self.repo_id}.", "model_access_denied") from None
            return actor.name if actor else "anonymous"

    def _viewer(self, session: Session, viewer: str, sig: str) -> Actor | None:
        fields = {k: v[0] for k, v in parse_qs(sig).items()}
        if not self.services.signer.verify("serve-viewer", f"{self.repo_id}\n{viewer}", fields.get("size"),
                                           fields.get("exp"), fields.get("sig")):
            raise AccessDenied(401, "The playground's viewer assertion is invalid or expired.", "invalid_api_key")
        if not viewer:
            return None
        user = get_user(session, viewer)
        if user is None or user.disabled:
            raise AccessDenied(401, "The playground's viewer no longer exists.", "invalid_api_key")
        return actor_for(session, user, "write", via_session=True)
