"""The route class of every page: domain errors become HTML pages, never the API's JSON.

A handler that must answer with a re-rendered form raises `Rerender(response)`: the exception
passes through the unit of work first, so nothing the handler did before is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from commons import errors as e
from commons.api.ratelimit import TooManyAttempts
from commons.hub.discussions import DiscussionNotFound
from commons.hub.ids import RepoType
from commons.web.deps import CsrfRejected, SignInRequired
from commons.web.templating import render
from commons.web.urls import with_query


class Rerender(Exception):
    """Answer with `response` (a form shown again with its errors) and roll back the unit of work."""

    def __init__(self, response: Response) -> None:
        super().__init__("rerender")
        self.response = response


# (error class, status, page title)
_PAGES: list[tuple[type[e.CommonsError], int, str]] = [
    (CsrfRejected, 403, "Form expired"),
    (e.RepoNotFound, 404, "Repository not found"),
    (e.RepoDisabled, 403, "Repository disabled"),
    (e.RevisionNotFound, 404, "Revision not found"),
    (e.EntryNotFound, 404, "File not found"),
    (DiscussionNotFound, 404, "Discussion not found"),
    (e.Unauthorized, 401, "Sign in required"),
    (e.PermissionDenied, 403, "Not allowed"),
    (TooManyAttempts, 429, "Too many attempts"),
    (e.Conflict, 409, "Conflict"),
    (e.PreconditionFailed, 409, "Changed meanwhile"),
    (e.InvalidRequest, 400, "Invalid request"),
]


def route_kind(request: Request) -> RepoType:
    """The repo type a repo page was routed as (its route starts with `/datasets/` or not)."""
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    return RepoType.DATASET if path.startswith("/datasets/") else RepoType.MODEL


def error_page(request: Request, exc: e.CommonsError) -> Response:
    if isinstance(exc, SignInRequired):
        return RedirectResponse(with_query("/login", next=exc.next_url), status_code=303)
    if isinstance(exc, e.Unauthorized) and request.method == "GET":
        return RedirectResponse(with_query("/login", next=request.url.path), status_code=303)
    if isinstance(exc, e.GatedRepo):
        from commons.web.pages.gate import gate_page

        return gate_page(request, route_kind(request), exc.repo_id)
    status, title = 400, "Something went wrong"
    for cls, code, heading in _PAGES:
        if isinstance(exc, cls):
            status, title = code, heading
            break
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
    return render(request, "pages/error.html", code=status, headers=headers, title=title, message=exc.message,
                  status_code=status)


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Rerender as signal:
                return signal.response
            except e.CommonsError as exc:
                return error_page(request, exc)

        return page
