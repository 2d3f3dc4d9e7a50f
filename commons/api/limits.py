"""Request size limits, enforced while the body streams in (Content-Length may be absent or false)."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bodies that are streams of file content get their own, larger limit.
STREAMING_SUFFIXES = ("/git-upload-pack",)
COMMIT_MARKER = "/commit/"


class BodyTooLarge(Exception):
    pass


class RequestSizeLimit:
    def __init__(self, app: ASGIApp, max_request: int, max_commit: int) -> None:
        self.app = app
        self.max_request = max_request
        self.max_commit = max_commit

    def _limit(self, scope: Scope) -> int | None:
        path: str = scope.get("path", "")
        if path.startswith("/upload/") or path.endswith(STREAMING_SUFFIXES):
            return None  # signed uploads check their declared size; git bodies are bounded by git.py
        if path.startswith("/api/") and COMMIT_MARKER in path:
            return self.max_commit
        return self.max_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(limit)(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    message = f"Request body larger than the maximum of {limit} bytes"
    return JSONResponse({"error": message}, status_code=413, headers={"X-Error-Message": message})
