"""Markdown to safe HTML, for model cards and comments.

markdown-it-py parses (raw HTML in cards is common, so it is kept for the sanitiser), pygments
colours fenced code, and nh3 (ammonia) keeps only an allowlist of tags and attributes: no scripts,
no event handlers, no `style`, and links only to http(s), mailto or relative URLs. Relative links
in a card are rewritten to the repo's file pages, and relative images to its files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight  # type: ignore[import-untyped, unused-ignore]
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped, unused-ignore]
from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped, unused-ignore]
from pygments.token import STANDARD_TYPES  # type: ignore[import-untyped, unused-ignore]
from pygments.util import ClassNotFound  # type: ignore[import-untyped, unused-ignore]

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q",
    "s", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "u", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "pre": {"class"},
}
# Only the classes pygments emits survive: a card cannot borrow the site's own layout classes.
_CODE_CLASSES = frozenset(c for c in STANDARD_TYPES.values() if c) | {"highlight"}
_SCHEMES = {"http", "https", "mailto"}
_SIZE = re.compile(r"^\d{1,4}%?$")
_FORMATTER = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class LinkBase:
    """Where a card's relative links point: the repo's URL base and the revision the card is from."""

    repo_url: str  # "/ns/name" or "/datasets/ns/name"
    rev: str
    folder: str = ""  # the card's folder inside the repo

    def resolve(self, target: str, raw: bool) -> str:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/"):
            return target  # site-absolute: leave as written
        joined = _join(self.folder, path)
        if not joined:
            return target
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        kind = "resolve" if raw else "blob"
        return f"{self.repo_url}/{kind}/{quote(self.rev, safe='')}/{quote(joined)}{fragment}"


def _join(folder: str, path: str) -> str:
    out: list[str] = [p for p in folder.split("/") if p]
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/".join(out)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return f'<pre class="highlight"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    # Let every link through the parser: the sanitiser drops unsafe ones instead of leaving their text.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


_MD = _parser()


def _attribute_filter(base: LinkBase | None) -> Callable[[str, str, str], str | None]:
    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr == "class":
            classes = [c for c in value.split() if c in _CODE_CLASSES or c.startswith("language-")]
            return " ".join(classes) or None
        if attr in ("width", "height"):
            return value if _SIZE.match(value) else None
        if attr in ("href", "src"):
            scheme = urlsplit(value).scheme.lower()
            if scheme and scheme not in _SCHEMES:
                return None
            if not scheme and base is not None and not value.startswith(("#", "//")):
                return base.resolve(value, raw=tag == "img")
        return value

    return keep


def render_markdown(text: str, base: LinkBase | None = None) -> Markup:
    """Sanitised HTML for `text` (a card body or a comment)."""
    html = _MD.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript", "textarea",
                            "select", "svg", "math"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter(base),
        url_schemes=_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )
    return Markup(clean)
