"""Jinja2 set-up and `render()`: every page goes out with the same security headers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from commons import __version__
from commons.web import urls
from commons.web.cardmeta import human_count
from commons.web.deps import ANONYMOUS
from commons.web.markdown import render_markdown
from commons.web.panels import tabs_for

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Pages never run inline script or style; images may come from anywhere over https (card badges).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def timeago(dt: datetime | None) -> str:
    if dt is None:
        return "never"
    seconds = (datetime.now(UTC) - _aware(dt)).total_seconds()
    if seconds < 45:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"),
                       (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "1 minute ago"


def isodate(dt: datetime | None) -> str:
    return _aware(dt).isoformat(timespec="seconds") if dt else ""


def longdate(dt: datetime | None) -> str:
    return _aware(dt).strftime("%d %b %Y, %H:%M UTC") if dt else ""


def filesize(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1000
    return f"{n} B"


def avatar_class(name: str) -> str:
    """One of eight colours, fixed per name (no inline styles: the CSP forbids them)."""
    return f"avatar-{int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) % 8}"


@cache
def static_version(name: str) -> str:
    path = STATIC / name
    data = path.read_bytes() if path.is_file() else __version__.encode()
    return hashlib.sha256(data).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version(name)}"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(timeago=timeago, isodate=isodate, longdate=longdate, filesize=filesize,
                       count=human_count, markdown=render_markdown, short=lambda sha: (sha or "")[:7])
    env.globals.update(
        static=static_url, avatar=avatar_class, version=__version__,
        tree_url=urls.tree_url, blob_url=urls.blob_url, resolve_url=urls.resolve_url,
        commits_url=urls.commits_url, repo_url=urls.repo_url, qrev=urls.qrev, qpath=urls.qpath,
        with_query=urls.with_query, search_url=urls.search_url, repo_tabs=tabs_for,
    )
    return env


ENV = _environment()
# The icon macro is used everywhere: a global, so no template needs to import it.
ENV.globals["icon"] = ENV.get_template("partials/icons.html").module.icon  # type: ignore[attr-defined]


def render_html(template_name: str, request: Request, /, **context: Any) -> str:
    viewer = getattr(request.state, "viewer", ANONYMOUS)
    template = ENV.get_template(template_name)
    return template.render(request=request, viewer=viewer, csrf=viewer.csrf, page_path=request.url.path, **context)


def render(request: Request, template: str, /, code: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """A full page (or, for htmx requests that ask for it, a fragment template) with security headers."""
    html = render_html(template, request, **context)
    return HTMLResponse(html, status_code=code, headers={**HEADERS, **(headers or {})})
