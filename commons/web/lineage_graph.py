"""Lay out a lineage graph for drawing: repos in rows by distance from the repo, edges as curves.

A pure function of the `Lineage` (no I/O), so the same facts always give the same picture. The
repo sits in the bottom row and its ancestors rise above it, one row per generation (a repo
reached by paths of several lengths goes in the row of its longest path, so every edge points
up). Within a row, repos are ordered by the mean position of their children (a barycenter pass,
which keeps most edges from crossing), then by kind and id. The template
`partials/license_graph.html` draws the result as inline SVG.

Edge styles say where a fact came from (`EdgeLook`): *recorded* by a Commons job, *verified* by
file evidence, *declared* on a card and not checked, or *contradicted* (shown, carries no terms).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from commons.policy import Edge, EdgeKind, EdgeSource, EdgeStatus, Lineage, RepoKind, RepoNode, RepoRef

NODE_W, NODE_H = 230, 58
GAP_X, GAP_Y = 26, 74
PAD = 16
LABEL_CHARS = 30


class EdgeLook(StrEnum):
    RECORDED = "recorded"  # a Commons job recorded it
    EVIDENCE = "evidence"  # the files confirm it
    DECLARED = "declared"  # the card says so; not checked
    CONTRADICTED = "contradicted"  # recorded facts or evidence disagree


EDGE_KIND_LABELS = {
    EdgeKind.BASE_MODEL: "base model",
    EdgeKind.DATASET: "dataset",
    EdgeKind.TRAINED_ON_OUTPUTS: "trained on outputs of",
}
EDGE_LOOK_LABELS = {
    EdgeLook.RECORDED: "recorded by a Commons job",
    EdgeLook.EVIDENCE: "verified by file evidence",
    EdgeLook.DECLARED: "declared on a card, not verified",
    EdgeLook.CONTRADICTED: "contradicted (its terms are not applied)",
}


def edge_look(edge: Edge) -> EdgeLook:
    if edge.status is EdgeStatus.CONTRADICTED:
        return EdgeLook.CONTRADICTED
    if EdgeSource.RECORDED in edge.sources:
        return EdgeLook.RECORDED
    if edge.status is EdgeStatus.VERIFIED:
        return EdgeLook.EVIDENCE
    return EdgeLook.DECLARED


@dataclass(frozen=True)
class PlacedNode:
    ref: RepoRef
    x: int
    y: int
    label: str  # the repo id, shortened to fit the box
    detail: str  # license and revision
    kind: RepoKind
    is_root: bool
    hosted: bool  # a repo of this hub (links to its page) or kept by id
    href: str | None


@dataclass(frozen=True)
class PlacedEdge:
    child: RepoRef
    parent: RepoRef
    kind: EdgeKind
    look: EdgeLook
    relation: str
    path: str  # SVG path data, child (below) to parent (above)
    label_x: int
    label_y: int
    text: str  # for the tooltip
    notes: str  # how the status was reached ("adapter_config.json names this base model" …)
    child_href: str | None = None
    parent_href: str | None = None


@dataclass(frozen=True)
class GraphLayout:
    width: int
    height: int
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]

    node_w: int = NODE_W
    node_h: int = NODE_H

    @property
    def looks(self) -> tuple[EdgeLook, ...]:
        return tuple(EdgeLook)

    @property
    def kinds(self) -> tuple[EdgeKind, ...]:
        return tuple(EdgeKind)


def layout_lineage(lineage: Lineage, root: RepoRef) -> GraphLayout:
    """Positions for every repo reachable from `root` (contradicted edges included) and every edge between them."""
    start = lineage.node(root)
    if start is None:
        raise KeyError(f"{root} is not in the lineage graph")
    order, links = _reachable(lineage, start.ref)
    level = _levels(order, links, start.ref)
    rows: dict[int, list[RepoRef]] = {}
    for ref in order:
        rows.setdefault(level[ref], []).append(ref)
    rank = _order_rows(rows, links)
    widest = max(len(r) for r in rows.values())
    width = 2 * PAD + widest * NODE_W + (widest - 1) * GAP_X
    depth = max(rows)
    height = 2 * PAD + (depth + 1) * NODE_H + depth * GAP_Y
    nodes: dict[RepoRef, PlacedNode] = {}
    for lvl, refs in rows.items():
        row_w = len(refs) * NODE_W + (len(refs) - 1) * GAP_X
        left = (width - row_w) // 2
        y = PAD + (depth - lvl) * (NODE_H + GAP_Y)
        for ref in refs:
            node = lineage.node(ref) or RepoNode(ref, known=False, hosted=False)
            nodes[ref] = _place(node, left + rank[ref] * (NODE_W + GAP_X), y, ref == start.ref)
    out_port, in_port = _ports(links, nodes)
    placed = tuple(_edge(e, nodes[c], nodes[p], out_port[i], in_port[i]) for i, (e, c, p) in enumerate(links))
    return GraphLayout(width, height, tuple(nodes[r] for r in order), placed)


def _ports(links: list[Link], nodes: dict[RepoRef, PlacedNode]) -> tuple[list[int], list[int]]:
    """Where each edge leaves its child's top and enters its parent's bottom: spread, in x order, so
    edges from one repo do not all meet in one point."""
    children = [c for _, c, _ in links]
    parents = [p for _, _, p in links]
    return _spread(children, parents, nodes), _spread(parents, children, nodes)


def _spread(ends: list[RepoRef], others: list[RepoRef], nodes: dict[RepoRef, PlacedNode]) -> list[int]:
    ports = [0] * len(ends)
    groups: dict[RepoRef, list[int]] = {}
    for i, ref in enumerate(ends):
        groups.setdefault(ref, []).append(i)
    for ref, members in groups.items():
        members.sort(key=lambda i: (nodes[others[i]].x, i))
        for k, i in enumerate(members):
            ports[i] = nodes[ref].x + NODE_W * (k + 1) // (len(members) + 1)
    return ports


Link = tuple[Edge, RepoRef, RepoRef]  # an edge with its ends as the graph's node refs


def _node_ref(lineage: Lineage, ref: RepoRef) -> RepoRef:
    node = lineage.node(ref)
    return node.ref if node is not None else ref


def _reachable(lineage: Lineage, root: RepoRef) -> tuple[list[RepoRef], list[Link]]:
    """Every repo and edge reachable from `root`, breadth first in canonical order."""
    order, links, queue = [root], [], [root]
    seen = {root}
    while queue:
        ref = queue.pop(0)
        for edge in lineage.parents(ref):
            parent = _node_ref(lineage, edge.parent)
            links.append((edge, ref, parent))
            if parent not in seen:
                seen.add(parent)
                order.append(parent)
                queue.append(parent)
    return order, links


def _levels(order: list[RepoRef], links: list[Link], root: RepoRef) -> dict[RepoRef, int]:
    """Rows by longest path from the root, so every edge points up; edges closing a cycle do not count."""
    ups: dict[RepoRef, list[RepoRef]] = {}
    for _, child, parent in links:
        ups.setdefault(child, []).append(parent)
    back: set[tuple[RepoRef, RepoRef]] = set()
    state: dict[RepoRef, int] = {}  # 1: on the current path, 2: done

    def visit(ref: RepoRef) -> None:  # depth first, to find the edges that close cycles
        state[ref] = 1
        for parent in ups.get(ref, []):
            if state.get(parent) == 1:
                back.add((ref, parent))
            elif parent not in state:
                visit(parent)
        state[ref] = 2

    visit(root)
    level = {ref: 0 for ref in order}
    for _ in range(len(order)):  # the rest is acyclic: at most len(order) rounds of relaxation
        changed = False
        for _, child, parent in links:
            if (child, parent) not in back and level[parent] < level[child] + 1:
                level[parent] = level[child] + 1
                changed = True
        if not changed:
            break
    return level


def _order_rows(rows: dict[int, list[RepoRef]], links: Iterable[Link]) -> dict[RepoRef, int]:
    """Each repo's index in its row: by the mean index of its children (rows below come first)."""
    children: dict[RepoRef, list[RepoRef]] = {}
    for _, child, parent in links:
        children.setdefault(parent, []).append(child)
    centre: dict[RepoRef, float] = {}
    rank: dict[RepoRef, int] = {}
    for lvl in sorted(rows):
        refs = rows[lvl]

        def bary(ref: RepoRef) -> float:
            xs = [centre[c] for c in children.get(ref, []) if c in centre]
            return sum(xs) / len(xs) if xs else 0.0

        ranked = sorted(refs, key=lambda r: (bary(r), r.kind.value, r.repo_id, r.revision))
        for i, ref in enumerate(ranked):
            rank[ref] = i
            centre[ref] = i - (len(ranked) - 1) / 2  # rows are centred: compare positions, not indexes
    return rank


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _place(node: RepoNode, x: int, y: int, is_root: bool) -> PlacedNode:
    ref = node.ref
    if not node.known or not node.hosted:
        detail = "outside this hub · kept by id"
    else:
        lic = node.license_name if node.license == "other" and node.license_name else node.license
        detail = f"{lic or 'no license declared'}" + (f" · {ref.revision[:7]}" if ref.revision else "")
    href = None
    if node.known and node.hosted:
        href = ("/datasets/" if ref.kind is RepoKind.DATASET else "/") + ref.repo_id
    return PlacedNode(ref, x, y, _short(ref.repo_id), _short(detail, LABEL_CHARS + 4), ref.kind, is_root,
                      node.known and node.hosted, href)


def _edge(edge: Edge, child: PlacedNode, parent: PlacedNode, out_x: int, in_x: int) -> PlacedEdge:
    x1, y1 = out_x, child.y
    x2, y2 = in_x, parent.y + NODE_H
    if y2 >= y1:  # same row or downwards (a cycle): loop around the side
        x1, x2 = child.x + NODE_W, parent.x + NODE_W
        y1, y2 = child.y + NODE_H // 2, parent.y + NODE_H // 2
        bend = max(x1, x2) + GAP_X
        path = f"M{x1},{y1} C{bend},{y1} {bend},{y2} {x2},{y2}"
        lx, ly = bend, (y1 + y2) // 2
    else:
        mid = (y1 + y2) // 2
        path = f"M{x1},{y1} C{x1},{mid} {x2},{mid} {x2},{y2}"
        lx, ly = (x1 + x2) // 2, mid
    look = edge_look(edge)
    text = (f"{edge.child} → {edge.parent}: {edge.relation.value.replace('_', ' ')} "
            f"({EDGE_KIND_LABELS[edge.kind]}; {EDGE_LOOK_LABELS[look]})")
    if edge.notes:
        text += f" — {'; '.join(edge.notes)}"
    return PlacedEdge(edge.child, edge.parent, edge.kind, look, edge.relation.value.replace("_", " "), path,
                      lx, ly, text, "; ".join(edge.notes), child.href, parent.href)
