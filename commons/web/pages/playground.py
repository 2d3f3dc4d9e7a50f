"""The Playground tab of a model page: chat with the model through a running `commons serve-model`.

The hub never loads a model (it must not import torch). Model servers announce themselves in
`$COMMONS_HOME/serving/servers/` (commons.serving.registry); this page finds the newest one serving
the repo and proxies the chat to it, streaming the server's SSE through unchanged. The proxy sends
who is looking as a short-lived assertion signed with the hub's secret key, and the model server
checks that user's read access against the hub's database, exactly as it checks a token. When no
server runs, the tab says how to start one, and those who may write to the repo get a Serve button:
the hub then starts `commons serve-model` for the repo's head commit (commons.serving.launcher) and
the tab shows it starting until it listens; a Stop button ends it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from commons.accounts import sessions
from commons.api.audit import audit
from commons.hub.repos import Need
from commons.serving import launcher
from commons.serving.access import VIEWER_HEADER, VIEWER_SIG_HEADER, sign_viewer
from commons.serving.registry import ServerEntry, running
from commons.web.deps import ServicesDep, SignedInForm
from commons.web.panels import Tab, register_tab
from commons.web.reporoutes import RepoView, RepoViewDep, repo_route
from commons.web.templating import render

MAX_BODY = 64 * 1024
CSRF_HEADER = "X-CSRF-Token"

register_tab(Tab("playground", "Playground", "terminal", "playground", kinds=("model",), order=60))


def _server(view: RepoView, services: Any) -> ServerEntry | None:
    found = running(services.settings.home, view.repo.repo_id)
    return found[0] if found else None


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": code}}, status_code=status)


@repo_route("/playground")
def playground(request: Request, view: RepoViewDep, services: ServicesDep) -> Response:
    server = _server(view, services) if view.can_read else None
    commit = view.repo.head_sha if view.can_read else None
    home = services.settings.home
    may_serve = view.viewer.actor is not None and view.may(Need.WRITE)
    start = launcher.starting(home, view.repo.repo_id) if may_serve and server is None else None
    failed = launcher.last_log(home, view.repo.repo_id) if may_serve and server is None and start is None else None
    return render(request, "pages/playground.html", view=view, repo=view.repo, tab="playground", rev="main",
                  server=server, commit=commit, signed_in=view.viewer.actor is not None, may_serve=may_serve,
                  starting=start, last_log=failed)


@repo_route("/playground/serve", methods=("POST",))
def playground_serve(request: Request, view: RepoViewDep, actor: SignedInForm, services: ServicesDep) -> Response:
    """Start a model server for the repo's head commit (writers only: it takes the machine's memory and cores)."""
    repo = view.require(Need.WRITE)
    if repo.head_sha is None:
        return RedirectResponse(f"{view.base}/playground", status_code=303)
    started = launcher.start(services.settings.home, repo.repo_id, repo.head_sha)
    audit(request, "model.serve", f"{repo.type}:{repo.repo_id}", repo.namespace,
          pid=started.pid if started else None, via="web")
    return RedirectResponse(f"{view.base}/playground", status_code=303)


@repo_route("/playground/stop", methods=("POST",))
def playground_stop(request: Request, view: RepoViewDep, actor: SignedInForm, services: ServicesDep) -> Response:
    repo = view.require(Need.WRITE)
    stopped = launcher.stop(services.settings.home, repo.repo_id)
    audit(request, "model.stop", f"{repo.type}:{repo.repo_id}", repo.namespace, stopped=stopped, via="web")
    return RedirectResponse(f"{view.base}/playground", status_code=303)


@repo_route("/playground/chat", methods=("POST",))
async def playground_chat(request: Request, view: RepoViewDep, services: ServicesDep) -> Response:
    """Relay one chat request to the model server, streaming its answer back (OpenAI SSE chunks)."""
    actor = view.viewer.actor
    if actor is None or not sessions.csrf_ok(view.viewer.csrf, request.headers.get(CSRF_HEADER)):
        return _error(403, "Sign in, then reload the page to chat.", "csrf")
    if not view.may(Need.FILES):
        return _error(403, "You may not read this model.", "model_access_denied")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _error(413, "The conversation is too long for the playground.", "too_large")
    try:
        body = json.loads(raw)
        messages = body["messages"]
        assert isinstance(messages, list)
    except (ValueError, KeyError, AssertionError):
        return _error(400, "Send {\"messages\": [...]}.", "invalid_value")
    server = _server(view, services)
    if server is None:
        return _error(503, "No model server runs for this repo: start one with `commons serve-model`.",
                      "no_server")
    payload = {"model": server.model, "messages": messages, "stream": True,
               "stream_options": {"include_usage": True},
               **{k: body[k] for k in ("max_tokens", "temperature", "top_p", "seed", "stop") if k in body}}
    headers = {VIEWER_HEADER: actor.name, VIEWER_SIG_HEADER: sign_viewer(services, view.repo.repo_id, actor.name)}
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=300.0))
    try:
        upstream = await client.send(client.build_request("POST", f"{server.url}/v1/chat/completions",
                                                          json=payload, headers=headers), stream=True)
    except httpx.HTTPError:
        await client.aclose()
        return _error(502, f"The model server at {server.url} does not answer.", "server_unreachable")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for part in upstream.aiter_raw():
                yield part
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(relay(), status_code=upstream.status_code,
                             media_type=upstream.headers.get("content-type", "text/event-stream"),
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
