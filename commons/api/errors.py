"""One table: domain error → (status, X-Error-Code, message), as huggingface_hub maps them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from commons import errors as e
from commons.api.ratelimit import TooManyAttempts
from commons.hub.discussions import DiscussionNotFound
from commons.jobs.states import InvalidJobTransition, JobNotFound

# (status for an authenticated caller, status for an anonymous one, X-Error-Code)
_TABLE: list[tuple[type[e.CommonsError], int, int, str | None]] = [
    (e.RepoNotFound, 404, 401, "RepoNotFound"),
    (e.GatedRepo, 403, 401, "GatedRepo"),
    (e.RevisionNotFound, 404, 404, "RevisionNotFound"),
    (e.EntryNotFound, 404, 404, "EntryNotFound"),
    (e.RepoDisabled, 403, 403, None),
    (e.Unauthorized, 401, 401, None),
    (e.PermissionDenied, 403, 403, None),
    (e.Conflict, 409, 409, None),
    (e.PreconditionFailed, 412, 412, None),
    (e.IntegrityError, 422, 422, None),
    (e.PayloadTooLarge, 413, 413, None),
    (e.PolicyBlocked, 403, 403, None),
    (DiscussionNotFound, 404, 404, None),
    (JobNotFound, 404, 404, None),
    (InvalidJobTransition, 409, 409, None),
    (TooManyAttempts, 429, 429, None),
    (e.InvalidRequest, 400, 400, None),
]


def error_response(
    exc: e.CommonsError, anonymous: bool, extra_headers: dict[str, str] | None = None
) -> JSONResponse:
    status, code = 400, None
    for cls, authed_status, anon_status, xcode in _TABLE:
        if isinstance(exc, cls):
            status, code = (anon_status if anonymous else authed_status), xcode
            break
    # Header values must be latin-1; keep the message readable and on one line.
    message = exc.message.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    headers.update(extra_headers or {})
    body: dict[str, object] = {"error": exc.message}
    if isinstance(exc, e.Conflict) and exc.url:
        body["url"] = exc.url
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_commons_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.CommonsError)
    anonymous = getattr(request.state, "actor", None) is None
    return error_response(exc, anonymous, getattr(exc, "headers", None))
