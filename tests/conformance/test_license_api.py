"""License checks through the API: inherited terms, conflicts, the commit-time check, CLI-style questions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.hubserver import HubServer


def _card(license_: str, **fields: object) -> bytes:
    lines = [f"license: {license_}"]
    for key, value in fields.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"- {v}" for v in value]
        else:
            lines.append(f"{key}: {value}")
    return ("---\n" + "\n".join(lines) + "\n---\n# card\n").encode()


def _get(hub: HubServer, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{hub.url}{path}", params=params, headers={"authorization": f"Bearer {hub.alice_token}"})


@pytest.fixture
def family(hub: HubServer, repo_name: str) -> dict[str, str]:
    api = hub.api()
    base, data, child = (f"alice/{repo_name}-{k}" for k in ("base", "data", "child"))
    api.create_repo(base)
    api.upload_file(path_or_fileobj=_card("llama3.1"), path_in_repo="README.md", repo_id=base)
    api.create_repo(data, repo_type="dataset")
    api.upload_file(path_or_fileobj=_card("cc-by-nc-4.0"), path_in_repo="README.md", repo_id=data,
                    repo_type="dataset")
    api.create_repo(child)
    return {"base": base, "data": data, "child": child}


def test_inherited_terms_and_conflict(hub: HubServer, family: dict[str, str]) -> None:
    api = hub.api()
    card = _card("apache-2.0", base_model=family["base"], base_model_relation="finetune", datasets=[family["data"]])
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=family["child"])
    r = _get(hub, f"/api/commons/license/models/{family['child']}")
    assert r.status_code == 200, r.text
    body = r.json()
    decision = body["decision"]
    assert decision["verdict"] in ("conflict", "blocked")
    assert decision["mode"] == "strict"
    assert decision["terms"]["commercial_use"]["value"] == "no"
    text = " ".join(line["text"] for line in body["lines"]).lower()
    assert "commercial" in text
    assert "llama" in body["notice"].lower()
    commercial = _get(hub, f"/api/commons/license/models/{family['child']}/ask", question="commercial_use").json()
    assert commercial["answer"] == "no" and commercial["reasons"]
    graph = _get(hub, f"/api/commons/lineage/models/{family['child']}").json()
    assert len(graph["edges"]) == 2


def test_commit_warns_then_blocks_by_policy(hub: HubServer, family: dict[str, str]) -> None:
    api = hub.api()
    card = _card("mit", base_model=family["base"], datasets=[family["data"]])
    r = httpx.post(f"{hub.url}/api/commons/policy/alice", headers={"authorization": f"Bearer {hub.alice_token}"})
    assert r.status_code == 405  # PUT only
    ok = api.create_commit(family["child"], operations=[CommitOperationAdd("README.md", card)], commit_message="card")
    assert ok.oid  # warn mode: the commit goes through (with an X-HF-Warning)
    r = httpx.put(f"{hub.url}/api/commons/policy/alice", json={"license_on_conflict": "block"},
                  headers={"authorization": f"Bearer {hub.alice_token}"})
    assert r.status_code == 200
    try:
        with pytest.raises(HfHubHTTPError) as err:
            api.create_commit(family["child"], operations=[CommitOperationAdd("README.md", card + b"\nmore")],
                              commit_message="card 2")
        assert err.value.response.status_code == 403 and "License conflict" in str(err.value)
        # the engine says what the card may declare instead, rather than a guess
        suggested = _get(hub, f"/api/commons/license/models/{family['child']}").json()["suggestedLicense"]
        assert suggested["license"] in ("other", "llama3.1")
    finally:
        httpx.put(f"{hub.url}/api/commons/policy/alice", json={"license_on_conflict": "warn"},
                  headers={"authorization": f"Bearer {hub.alice_token}"})


def test_lenient_mode_reports_dataset_terms(hub: HubServer, family: dict[str, str]) -> None:
    api = hub.api()
    card = _card("llama3.1", base_model=family["base"], datasets=[family["data"]])
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=family["child"])
    strict = _get(hub, f"/api/commons/license/models/{family['child']}", mode="strict").json()["decision"]
    lenient = _get(hub, f"/api/commons/license/models/{family['child']}", mode="lenient").json()["decision"]
    assert strict["terms"]["commercial_use"]["value"] == "no"
    assert lenient["mode"] == "lenient" and lenient["terms"]["commercial_use"]["value"] != "no"


def test_private_ancestors_do_not_leak(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    secret = f"alice/{repo_name}-secret"
    api.create_repo(secret, private=True)
    api.upload_file(path_or_fileobj=_card("cc-by-nc-4.0"), path_in_repo="README.md", repo_id=secret)
    bob = hub.api("bob")
    child = f"bob/{repo_name}-child"
    bob.create_repo(child)
    bob.upload_file(path_or_fileobj=_card("mit", base_model=secret), path_in_repo="README.md", repo_id=child)
    r = httpx.get(f"{hub.url}/api/commons/license/models/{child}", headers={"authorization": f"Bearer {hub.bob_token}"})
    assert "cc-by-nc" not in r.text.lower()


def _safetensors(tensors: dict[str, list[list[float]]]) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({k: np.array(v, dtype=np.float32) for k, v in tensors.items()})


def _edge(hub: HubServer, repo_id: str, parent: str) -> dict[str, object]:
    graph = _get(hub, f"/api/commons/lineage/models/{repo_id}").json()
    found = [e for e in graph["edges"] if e["child"]["repo_id"] == repo_id and e["parent"]["repo_id"] == parent]
    assert len(found) == 1, graph["edges"]
    edge: dict[str, object] = found[0]
    return edge


def test_file_evidence_verifies_and_contradicts(hub: HubServer, repo_name: str, tmp_path: Path) -> None:
    """Tensors compared with the claimed parent's (shapes, then bytes) and GGUF general.source metadata."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    api = hub.api()
    parent, tuned, other, quant = (f"alice/{repo_name}-{k}" for k in ("parent", "tuned", "other", "gguf"))
    weights = {"model.embed.weight": [[1.0, 2.0], [3.0, 4.0]], "model.head.weight": [[0.5, 0.25], [1.5, 2.5]]}
    for repo, files in (
        (parent, {"README.md": _card("apache-2.0"), "model.safetensors": _safetensors(weights)}),
        # the embeddings kept, the head trained: same shapes, one tensor byte-identical
        (tuned, {"README.md": _card("apache-2.0", base_model=parent, base_model_relation="finetune"),
                 "model.safetensors": _safetensors({**weights, "model.head.weight": [[9.0, 9.0], [9.0, 9.0]]})}),
        # claims the parent, but every tensor has another shape
        (other, {"README.md": _card("mit", base_model=parent, base_model_relation="finetune"),
                 "model.safetensors": _safetensors({k: [[0.0] * 3] * 3 for k in weights})}),
    ):
        api.create_repo(repo)
        api.create_commit(repo, [CommitOperationAdd(path, data) for path, data in files.items()], commit_message="up")
    path = str(tmp_path / "q.gguf")
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_source_repo_url(f"https://huggingface.co/{parent}")
    writer.add_file_type(2)
    writer.add_tensor("token_embd.weight", np.ones((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    api.create_repo(quant)
    api.create_commit(quant, [CommitOperationAdd("README.md", _card("apache-2.0", base_model=parent)),
                              CommitOperationAdd("model-Q4_0.gguf", path)], commit_message="up")

    edge = _edge(hub, tuned, parent)
    assert edge["status"] == "verified" and "1 of 2 tensors identical" in " ".join(edge["notes"])  # type: ignore[arg-type]
    anonymous = httpx.get(f"{hub.url}/api/commons/lineage/models/{tuned}").json()["edges"]
    assert [e["status"] for e in anonymous if e["parent"]["repo_id"] == parent] == ["verified"]
    edge = _edge(hub, other, parent)
    assert edge["status"] == "contradicted" and "tensor shapes differ" in " ".join(edge["notes"])  # type: ignore[arg-type]
    decision = _get(hub, f"/api/commons/license/models/{other}").json()["decision"]
    assert "lineage_contradicted" in {c["code"] for c in decision["conflicts"]}
    edge = _edge(hub, quant, parent)
    assert edge["relation"] == "quantized" and edge["status"] == "verified"
    assert "GGUF metadata names this repo as the source" in " ".join(edge["notes"])  # type: ignore[arg-type]
