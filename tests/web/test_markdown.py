"""Card and comment Markdown: rendered, and inert whatever the author writes."""

from __future__ import annotations

import pytest

from commons.web.markdown import LinkBase, render_markdown

BASE = LinkBase("/alice/m", "main")


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))",
    "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "![i](javascript:alert(1))",
    "<svg onload=alert(1)></svg>",
    "<iframe src=https://evil.example></iframe>",
    "<div style=\"background:url(javascript:alert(1))\" onclick=\"alert(1)\">d</div>",
    "<form action=https://evil.example><button>go</button></form>",
    "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "<a href=\"vbscript:msgbox(1)\">v</a>",
])
def test_nothing_active_survives(source: str) -> None:
    html = str(render_markdown(source, BASE)).lower()
    for marker in ("<script", "javascript:", "vbscript:", "onerror", "onload", "onclick", "ontoggle",
                   "<iframe", "<svg", "<form", "style=", "data:text"):
        assert marker not in html, (source, html)


def test_markdown_renders() -> None:
    html = str(render_markdown("# Title\n\n**bold** ~~gone~~\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", BASE))
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<s>gone</s>" in html
    assert "<table>" in html and "<td>1</td>" in html


def test_relative_links_point_into_the_repo() -> None:
    html = str(render_markdown("[c](config.json) [d](./docs/a.md#x) ![i](img/p.png) [up](../../x) [h](#top)"
                               " [abs](/other/page) [w](https://example.org/a)", BASE))
    assert 'href="/alice/m/blob/main/config.json"' in html
    assert 'href="/alice/m/blob/main/docs/a.md#x"' in html
    assert 'src="/alice/m/resolve/main/img/p.png"' in html
    assert 'href="/alice/m/blob/main/x"' in html  # never above the repo root
    assert 'href="#top"' in html and 'href="/other/page"' in html and 'href="https://example.org/a"' in html
    assert 'rel="nofollow noopener noreferrer"' in html


def test_code_blocks_are_highlighted_with_code_classes_only() -> None:
    html = str(render_markdown("```python\ndef f(): pass\n```\n\n<span class=\"topbar button\">x</span>"))
    assert '<span class="k">def</span>' in html
    assert "topbar" not in html and "button" not in html.replace("<button", "")
