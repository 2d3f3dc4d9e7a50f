"""How a file's bytes are shown: highlighted text (pygments), pretty JSON, an image, or nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from markupsafe import Markup
from pygments import highlight  # type: ignore[import-untyped, unused-ignore]
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped, unused-ignore]
from pygments.lexer import Lexer  # type: ignore[import-untyped, unused-ignore]
from pygments.lexers import JsonLexer, TextLexer, get_lexer_for_filename  # type: ignore[import-untyped, unused-ignore]
from pygments.util import ClassNotFound  # type: ignore[import-untyped, unused-ignore]

MAX_TEXT = 1_000_000  # bytes shown inline; bigger files are offered as a download
MAX_HIGHLIGHT = 300_000  # beyond this, text is shown without colours (pygments is slow on huge files)
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".bmp", ".ico")


@dataclass(frozen=True)
class Rendered:
    """A file ready for the page: `html` is highlighted code; `lines` its line count."""

    html: Markup
    lines: int
    language: str
    pretty: bool = False  # JSON re-indented for reading


def is_binary(data: bytes) -> bool:
    if b"\0" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _lexer(path: str, text: str) -> Lexer:
    name = path.rsplit("/", 1)[-1]
    if name.endswith((".jsonl", ".ipynb")):
        return JsonLexer()
    try:
        return get_lexer_for_filename(name, text[:2000])
    except ClassNotFound:
        return TextLexer()


def _pretty_json(text: str) -> str | None:
    """Minified JSON (one huge line) re-indented; None when the file already reads well."""
    first = text.split("\n", 1)[0]
    if len(first) < 300:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def render_text(path: str, text: str) -> Rendered:
    pretty = _pretty_json(text) if path.endswith(".json") else None
    shown = pretty or text
    lexer = _lexer(path, shown) if len(shown) <= MAX_HIGHLIGHT else TextLexer()
    formatter = HtmlFormatter(linenos="table", lineanchors="L", anchorlinenos=True, cssclass="source", wrapcode=True)
    html = Markup(highlight(shown, lexer, formatter))
    return Rendered(html, shown.count("\n") + (0 if shown.endswith("\n") else 1), lexer.name, pretty is not None)


@cache
def stylesheet() -> str:
    """Token colours for code, light and dark (served as /static/pygments.css)."""
    light = HtmlFormatter(style="default").get_style_defs([".source", ".highlight"])
    dark = HtmlFormatter(style="github-dark").get_style_defs([".source", ".highlight"])
    # Only token colours: backgrounds and line numbers come from the site's own stylesheet.
    keep = "\n".join(line for line in light.splitlines() if not _is_chrome(line))
    keep_dark = "\n".join(line for line in dark.splitlines() if not _is_chrome(line))
    return f"{keep}\n@media (prefers-color-scheme: dark) {{\n{keep_dark}\n}}\n"


def _is_chrome(rule: str) -> bool:
    return any(marker in rule for marker in ("pre {", "td.linenos", "span.linenos", " { background", ".hll"))
