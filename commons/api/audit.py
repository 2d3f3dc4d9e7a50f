"""Every write that succeeds is recorded in the audit log, after its response is sent.

Handlers name what they did with `audit(request, action, target, ...)`; a write whose handler
names nothing is still recorded, by method and path, so a new route cannot escape the log.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commons.accounts import audit as log

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes that change nothing a person would audit: reads that happen to use POST.
NOT_WRITES = ("/paths-info/", "/preupload/", "/api/validate-yaml", "/info/lfs/objects/batch",
              "/git-upload-pack")


def audit(request: Request, action: str, target: str, namespace: str | None = None, **details: Any) -> None:
    request.state.audit = {"action": action, "target": target, "namespace": namespace, "details": details}


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, capture)
        path = scope.get("path", "")
        if status >= 400 or any(marker in path for marker in NOT_WRITES):
            return
        state = scope.get("state", {})
        entry = state.get("audit") or {"action": f"http.{scope['method'].lower()}", "target": path,
                                       "namespace": None, "details": {}}
        actor = state.get("actor")
        client = scope.get("client")
        details = {**entry["details"], "status": status}
        if client:
            details["ip"] = client[0]
        services = scope["app"].state.services
        await run_in_threadpool(
            log.record, services.sessions, entry["action"], entry["target"],
            actor=getattr(actor, "name", None), token=getattr(actor, "token_name", None),
            namespace=entry["namespace"], details=details,
        )
