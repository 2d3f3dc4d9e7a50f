"""The License panel on card pages and the "Lineage & license" tab, on the live hub; the graph layout."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd

from commons.policy import Edge, EdgeSource, EdgeStatus, Lineage, Relation, RepoNode, dataset, model
from commons.web.lineage_graph import NODE_H, NODE_W, EdgeLook, layout_lineage
from tests.hubserver import HubServer
from tests.web.conftest import DESKTOP, Web


def _card(**fields: object) -> bytes:
    return ("---\n" + json.dumps(fields) + "\n---\n# card\n").encode()  # JSON is YAML


@pytest.fixture(scope="module")
def tree(hub: HubServer) -> dict[str, str]:
    """origin <-adapter (evidence)- base (llama3.1) <-adapter (recorded)- child (declares apache-2.0),
    child trained on data (cc-by-nc-4.0, recorded) and on data2 (declared, contradicted by the record),
    and on outputs of a model outside this hub (declared)."""
    api = hub.api("alice")
    name = f"lic-{random.getrandbits(40):010x}"
    ids = {k: f"alice/{name}-{k}" for k in ("origin", "base", "child", "data", "data2")}
    ids["teacher"] = "elsewhere/teacher-model"
    api.create_repo(ids["origin"])
    api.upload_file(path_or_fileobj=_card(license="llama3.1"), path_in_repo="README.md", repo_id=ids["origin"])
    api.create_repo(ids["base"])
    api.create_commit(ids["base"], [
        CommitOperationAdd("README.md", _card(license="llama3.1", base_model=ids["origin"])),
        CommitOperationAdd("adapter_config.json", json.dumps({"base_model_name_or_path": ids["origin"]}).encode()),
    ], commit_message="base")
    for key, lic in (("data", "cc-by-nc-4.0"), ("data2", "mit")):
        api.create_repo(ids[key], repo_type="dataset")
        api.upload_file(path_or_fileobj=_card(license=lic), path_in_repo="README.md", repo_id=ids[key],
                        repo_type="dataset")
    provenance = {"job": "lora", "inputs": {"base_models": [ids["base"]], "datasets": [ids["data"]]}}
    api.create_repo(ids["child"])
    api.create_commit(ids["child"], [
        CommitOperationAdd("README.md", _card(license="apache-2.0", base_model=ids["base"],
                                              base_model_relation="adapter", datasets=[ids["data"], ids["data2"]],
                                              trained_on_outputs_of=[ids["teacher"]])),
        CommitOperationAdd("provenance.json", json.dumps(provenance).encode()),
    ], commit_message="child")
    return ids


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#34;", '"').replace("&#39;", "'")


def test_card_page_has_a_license_panel(anon: Web, tree: dict[str, str]) -> None:
    html = anon.get(f"/{tree['child']}").text
    panel = html[html.index('class="panel license-panel"'):]
    panel = panel[:panel.index("</section>")]
    text = _text(panel)
    # Strict mode: a teacher outside this hub has unknown terms, which block release.
    assert "verdict-blocked" in panel and "Blocked" in text
    assert "ancestor elsewhere/teacher-model has an unresolved license" in text
    assert "Declared apache-2.0" in text
    assert "declares apache-2.0 but inherits the Llama 3.1 Community License" in text
    assert "display phrase Built with Llama" in text and "non commercial non-commercial use only" in text
    assert "strict" in text and f'href="/{tree["child"]}/license"' in panel
    data = _text(anon.get(f"/datasets/{tree['data']}").text)
    assert "License" in data and "Declared cc-by-nc-4.0" in data and "Allowed" in data
    tab = _text(anon.get(f"/datasets/{tree['data']}/license").text)
    assert "May I use it commercially? no" in tab and "quantized copy" not in tab and "Openness" not in tab


def test_lineage_tab_draws_the_family_tree(anon: Web, tree: dict[str, str]) -> None:
    page = anon.get(f"/{tree['child']}/license")
    assert page.status_code == 200
    html = page.text
    assert f'href="/{tree["child"]}/license" aria-current="page"' in html  # the tab, selected
    svg = html[html.index('<svg class="lineage-graph"'):html.index("</svg>", html.index('<svg class="lineage-graph"'))]
    for key in ("origin", "base", "child", "data", "data2", "teacher"):
        assert tree[key] in svg, key
    looks = set(re.findall(r'class="lg-edge kind-(\w+) look-(\w+)"', svg))
    assert {look for _, look in looks} == {"recorded", "evidence", "declared", "contradicted"}
    assert {kind for kind, _ in looks} == {"base_model", "dataset", "trained_on_outputs"}
    assert ("base_model", "evidence") in looks and ("dataset", "contradicted") in looks
    assert 'class="lg-node kind-model external"' in svg  # the teacher, kept by id
    assert f'<a href="/datasets/{tree["data"]}">' in svg and f'<a href="/{tree["teacher"]}">' not in svg
    legend = _text(html[html.index('class="lineage-legend"'):])
    for words in ("base model", "trained on outputs of", "recorded by a Commons job", "verified by file evidence",
                  "declared on a card, not verified", "contradicted", "outside this hub"):
        assert words in legend, words
    assert "<script" not in html and "style=" not in html  # the CSP allows neither


def test_lineage_tab_explains_the_decision(anon: Web, tree: dict[str, str]) -> None:
    text = _text(anon.get(f"/{tree['child']}/license", params={"users": 800_000_000}).text)
    assert "May I use it commercially? no" in text
    assert "May I offer it as a service?" in text and "May I redistribute a quantized copy?" in text
    assert "May I use it with 800,000,000 monthly active users? no" in text
    base = _text(anon.get(f"/{tree['base']}/license", params={"users": 800_000_000}).text)
    assert "May I use it with 800,000,000 monthly active users? no" in base
    assert "more than 700,000,000 monthly active users: a separate license from Meta" in base
    base = _text(anon.get(f"/{tree['base']}/license", params={"users": 5000}).text)
    assert "May I use it with 5,000 monthly active users? conditional" in base
    # Every line cites the ancestor, its license and the clause.
    assert f"datasets/{tree['data']}" in text and "Creative Commons Attribution Non Commercial 4.0" in text
    assert "Llama 3.1 Community License Agreement §1.b.i" in text
    assert "Mode strict" in text and "Engine 1." in text and "knowledge base" in text
    assert "Llama 3.1 is licensed under the Llama 3.1 Community License" in text  # the NOTICE
    assert "Model Openness Framework" in text and "Model parameters (Final)" in text
    lenient = _text(anon.get(f"/{tree['child']}/license", params={"mode": "lenient"}).text)
    assert "Mode lenient" in lenient and "May I use it commercially? no" not in lenient
    assert anon.get(f"/{tree['child']}/license", params={"mode": "sideways"}).status_code == 400


def test_private_ancestors_stay_private(hub: HubServer, anon: Web, repo_name: str) -> None:
    api = hub.api("alice")
    secret, child = f"alice/{repo_name}-secret", f"alice/{repo_name}-open"
    api.create_repo(secret, private=True)
    api.upload_file(path_or_fileobj=_card(license="cc-by-nc-4.0"), path_in_repo="README.md", repo_id=secret)
    api.create_repo(child)
    api.upload_file(path_or_fileobj=_card(license="mit", base_model=secret), path_in_repo="README.md", repo_id=child)
    for path in (f"/{child}", f"/{child}/license"):
        html = anon.get(path).text
        assert "cc-by-nc" not in html.lower() and "Non Commercial" not in html
    assert "outside this hub" in anon.get(f"/{child}/license").text


def test_graph_renders_in_a_browser(browser: Any, hub: HubServer, tree: dict[str, str],
                                    screenshots: Path) -> None:
    """Real Chromium: no CSP or console errors, every box drawn, the legend beside it."""
    context = browser.new_context(viewport=DESKTOP, base_url=hub.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(f"/{tree['child']}/license")
    graph = page.locator("svg.lineage-graph")
    assert graph.is_visible()
    boxes = [page.locator("g.lg-node rect").nth(i).bounding_box() for i in range(6)]
    assert all(b is not None and b["width"] > 100 and b["height"] > 30 for b in boxes)
    dashed = page.locator("g.lg-edge.look-declared path").first.evaluate("e => getComputedStyle(e).strokeDasharray")
    assert dashed not in ("", "none")  # the stylesheet reached the SVG
    assert page.locator(".lineage-legend").is_visible()
    page.screenshot(path=screenshots / "license.png", full_page=True)
    context.close()
    assert not problems, problems


# ----------------------------------------------------------------------------- the layout, a pure function


def _graph() -> tuple[Lineage, object]:
    root, base, grand = model("o/child"), model("o/base"), model("o/grand")
    data, gen = dataset("o/data"), model("x/gen")
    edges = [
        Edge(root, base, Relation.FINETUNE, (EdgeSource.RECORDED,), EdgeStatus.VERIFIED),
        Edge(root, data, Relation.TRAINING),
        Edge(base, grand, Relation.ADAPTER, (EdgeSource.EVIDENCE,), EdgeStatus.VERIFIED),
        Edge(data, gen, Relation.SYNTHETIC_DATA),
        Edge(root, grand, Relation.MERGE, status=EdgeStatus.CONTRADICTED),  # two paths of different length
        Edge(grand, root, Relation.FINETUNE),  # a cycle back to the root
    ]
    nodes = [RepoNode(r, license="mit") for r in (root, base, grand, data)]
    return Lineage.of(nodes, edges), root


def test_layout_puts_ancestors_above_and_is_deterministic() -> None:
    lineage, root = _graph()
    g = layout_lineage(lineage, root)  # type: ignore[arg-type]
    at = {str(n.ref): n for n in g.nodes}
    assert at["o/child"].is_root and at["o/child"].y == max(n.y for n in g.nodes)
    assert at["o/grand"].y < at["o/base"].y < at["o/child"].y  # longest path: grand above base
    assert not at["x/gen"].hosted and at["x/gen"].href is None
    for a in g.nodes:  # no two boxes overlap, all inside the canvas
        assert a.x >= 0 and a.x + NODE_W <= g.width and a.y >= 0 and a.y + NODE_H <= g.height
        for b in g.nodes:
            if a is not b and a.y == b.y:
                assert abs(a.x - b.x) >= NODE_W
    looks = {(str(e.child), str(e.parent)): e.look for e in g.edges}
    assert looks[("o/child", "o/base")] is EdgeLook.RECORDED
    assert looks[("o/base", "o/grand")] is EdgeLook.EVIDENCE
    assert looks[("o/child", "datasets/o/data")] is EdgeLook.DECLARED
    assert looks[("o/child", "o/grand")] is EdgeLook.CONTRADICTED
    assert len(g.edges) == 6  # the cycle's edge is drawn too (around the side)
    shuffled = Lineage.of(reversed(lineage.nodes), reversed(lineage.edges))
    assert layout_lineage(shuffled, root) == g  # type: ignore[arg-type]


def test_layout_of_a_repo_without_ancestors() -> None:
    lineage = Lineage.of([RepoNode(model("o/alone"), license="mit")])
    g = layout_lineage(lineage, model("o/alone"))
    assert len(g.nodes) == 1 and g.edges == () and g.width == NODE_W + 32 and g.height == NODE_H + 32
