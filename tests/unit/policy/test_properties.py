"""Hypothesis properties of propagation.

* adding an ancestor never removes an obligation (nor makes a binding one advisory);
* a repo with no ancestors inherits only its own terms;
* verdicts do not depend on the order in which ancestors (or facts, or card lists) are listed;
* strict mode binds at least what lenient mode binds;
* the declaration algebra is commutative and idempotent; every decision serialises to JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from commons.policy import (
    Channel,
    Edge,
    EdgeSource,
    EdgeStatus,
    Lineage,
    Mode,
    Relation,
    RepoFacts,
    RepoKind,
    RepoNode,
    RepoRef,
    build_lineage,
    evaluate,
    load_knowledge_base,
    resolve_license,
    to_jsonable,
)
from commons.policy.obligations import Source, full_obligations

KB = load_knowledge_base()
# Card values as users write them: every knowledge-base id, a few `other` names, and no license.
LICENSES: list[tuple[str | None, str | None]] = [
    (e.id, None) if not e.id.startswith("other:") else ("other", e.id.split(":", 1)[1]) for e in KB.entries
]
LICENSES += [(None, None), ("other", "some-unknown-terms")]

MODEL_TO_MODEL = [Relation.FINETUNE, Relation.ADAPTER, Relation.QUANTIZED, Relation.MERGE, Relation.DISTILLATION]
# POLICY_EXAMPLES=2000 runs a deeper search locally; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("POLICY_EXAMPLES", "120")), deadline=None)

licenses = st.sampled_from(LICENSES)
modes = st.sampled_from(list(Mode))


def _relation(draw: Any, child: RepoKind, parent: RepoKind) -> Relation:
    if parent is RepoKind.MODEL:
        return draw(st.sampled_from(MODEL_TO_MODEL)) if child is RepoKind.MODEL else Relation.SYNTHETIC_DATA
    return (
        draw(st.sampled_from([Relation.TRAINING, Relation.EVALUATION])) if child is RepoKind.MODEL else Relation.SOURCE
    )


def _node(ref: RepoRef, lic: tuple[str | None, str | None], gated: bool = False) -> RepoNode:
    return RepoNode(ref, license=lic[0], license_name=lic[1], gated_terms=gated)


@st.composite
def lineages(draw: Any) -> tuple[Lineage, RepoRef]:
    """A random DAG: node 0 (a model) is the repo judged; edges point from lower to higher indexes."""
    n = draw(st.integers(min_value=1, max_value=6))
    refs = [RepoRef(RepoKind.MODEL, "org/r0")]
    refs += [RepoRef(draw(st.sampled_from(list(RepoKind))), f"org/r{i}") for i in range(1, n)]
    nodes = [_node(ref, draw(licenses), draw(st.booleans())) for ref in refs]
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if draw(st.booleans()):
                status = draw(st.sampled_from([EdgeStatus.VERIFIED, EdgeStatus.UNVERIFIED]))
                edges.append(
                    Edge(refs[i], refs[j], _relation(draw, refs[i].kind, refs[j].kind), (EdgeSource.DECLARED,), status)
                )
    return Lineage.of(nodes, edges), refs[0]


def _keys(lineage: Lineage, repo: RepoRef, mode: Mode) -> tuple[set[Any], set[Any]]:
    decision = evaluate(lineage, repo, mode=mode)
    return {o.key for o in decision.obligations}, {o.key for o in decision.obligations if o.binding}


@SETTINGS
@given(lineages(), licenses, st.sampled_from(list(RepoKind)), st.data(), modes)
def test_adding_an_ancestor_never_removes_an_obligation(
    graph: tuple[Lineage, RepoRef], lic: tuple[str | None, str | None], kind: RepoKind, data: st.DataObject, mode: Mode
) -> None:
    lineage, root = graph
    before_all, before_binding = _keys(lineage, root, mode)
    child = data.draw(st.sampled_from(lineage.nodes)).ref
    new = RepoRef(kind, "org/new-ancestor")
    edge = Edge(child, new, _relation(data.draw, child.kind, kind), (EdgeSource.DECLARED,), EdgeStatus.UNVERIFIED)
    grown = Lineage.of([*lineage.nodes, _node(new, lic)], [*lineage.edges, edge])
    after_all, after_binding = _keys(grown, root, mode)
    assert before_all <= after_all
    assert before_binding <= after_binding


@SETTINGS
@given(licenses, st.sampled_from(list(RepoKind)), modes, st.booleans())
def test_a_repo_without_ancestors_inherits_only_its_own_terms(
    lic: tuple[str | None, str | None], kind: RepoKind, mode: Mode, gated: bool
) -> None:
    ref = RepoRef(kind, "org/alone")
    node = _node(ref, lic, gated)
    decision = evaluate(Lineage.of([node]), ref, mode=mode)
    assert decision.ancestors == ()
    for ob in decision.obligations:
        assert ob.binding
        assert all(r.ancestor == ref and r.channel is Channel.SELF for r in ob.reasons)
    for conflict in decision.conflicts:
        assert all(r.ancestor == ref and r.channel is Channel.SELF for r in conflict.reasons)
    own = full_obligations(Source(ref, node, resolve_license(lic[0], lic[1]), Channel.SELF), node, binding=True)
    assert {o.key for o in decision.obligations} == {o.key for o in own}
    assert decision.allowed_declarations.any_license  # nothing constrains what it declares


@SETTINGS
@given(lineages(), st.randoms(use_true_random=False), modes)
def test_verdicts_do_not_depend_on_the_order_of_ancestors(graph: tuple[Lineage, RepoRef], rnd: Any, mode: Mode) -> None:
    lineage, root = graph
    nodes, edges = list(lineage.nodes), list(lineage.edges)
    rnd.shuffle(nodes)
    rnd.shuffle(edges)
    shuffled = Lineage.of(nodes, edges)
    assert shuffled == lineage
    assert evaluate(shuffled, root, mode=mode) == evaluate(lineage, root, mode=mode)


@st.composite
def card_facts(draw: Any) -> list[RepoFacts]:
    """Cards of a model with several bases, datasets and teachers, each with its own license."""
    bases = [f"org/base{i}" for i in range(draw(st.integers(0, 3)))]
    data = [f"org/data{i}" for i in range(draw(st.integers(0, 3)))]
    teachers = [f"org/teacher{i}" for i in range(draw(st.integers(0, 2)))]
    lic = draw(licenses)
    card: dict[str, Any] = {"license": lic[0], "license_name": lic[1], "base_model": bases, "datasets": data}
    card["trained_on_outputs_of"] = teachers
    facts = [RepoFacts(RepoRef(RepoKind.MODEL, "org/Llama-root"), card=card)]
    for rid in bases + teachers:
        lic = draw(licenses)
        facts.append(RepoFacts(RepoRef(RepoKind.MODEL, rid), card={"license": lic[0], "license_name": lic[1]}))
    for rid in data:
        lic = draw(licenses)
        facts.append(RepoFacts(RepoRef(RepoKind.DATASET, rid), card={"license": lic[0], "license_name": lic[1]}))
    return facts


@SETTINGS
@given(card_facts(), st.randoms(use_true_random=False), modes)
def test_verdicts_do_not_depend_on_the_order_of_cards_and_card_lists(
    facts: list[RepoFacts], rnd: Any, mode: Mode
) -> None:
    root = facts[0].ref
    expected = evaluate(build_lineage(facts), root, mode=mode)
    card = dict(facts[0].card or {})
    for key in ("base_model", "datasets", "trained_on_outputs_of"):
        items = list(card[key])
        rnd.shuffle(items)
        card[key] = items
    reordered = [RepoFacts(root, card=card), *facts[1:]]
    rnd.shuffle(reordered)
    assert evaluate(build_lineage(reordered), root, mode=mode) == expected


@SETTINGS
@given(lineages())
def test_strict_binds_at_least_what_lenient_binds(graph: tuple[Lineage, RepoRef]) -> None:
    lineage, root = graph
    _, strict = _keys(lineage, root, Mode.STRICT)
    _, lenient = _keys(lineage, root, Mode.LENIENT)
    assert lenient <= strict


@SETTINGS
@given(lineages(), modes)
def test_every_line_has_a_reason_and_decisions_serialise(graph: tuple[Lineage, RepoRef], mode: Mode) -> None:
    lineage, root = graph
    decision = evaluate(lineage, root, mode=mode)
    assert all(reasons for _, reasons in decision.lines())
    data = json.loads(json.dumps(to_jsonable(decision)))
    assert data["mode"] == mode.value and data["engine_version"] == decision.engine_version


declarations = st.sampled_from([e.derivative_may_declare for e in KB.entries])


@given(declarations, declarations)
def test_declaration_intersection_is_commutative_and_idempotent(a: Any, b: Any) -> None:
    assert a.intersect(b) == b.intersect(a)
    assert a.intersect(a) == a
    assert a.intersect(b).intersect(b) == a.intersect(b)
