"""Route on the raw path: `refs%2Fpr%2F1` must stay one segment (see hf-api.md, pitfall 6)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send


class RawPathRouting:
    """ASGI middleware: match routes against the percent-encoded path; handlers `unquote` params.

    Starlette decodes `scope["path"]` before routing, which splits an encoded revision such as
    `refs%2Fpr%2F1` into three segments. Routing on the raw path keeps each client segment whole.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("raw_path"):
            raw = scope["raw_path"].split(b"?", 1)[0].decode("latin-1")
            if "%2f" in raw.lower():
                scope = dict(scope)
                # Decode everything except encoded slashes, so handlers see normal text.
                scope["path"] = _decode_keeping_slashes(raw)
        await self.app(scope, receive, send)


def _decode_keeping_slashes(raw: str) -> str:
    parts = raw.replace("%2f", "%2F").split("%2F")
    return "%2F".join(unquote(p) for p in parts)


def segment(value: str) -> str:
    """A path parameter as the client meant it (encoded slashes restored)."""
    return value.replace("%2F", "/")
