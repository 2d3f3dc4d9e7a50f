"""License checks through the API: inherited terms, conflicts, the commit-time check, CLI-style questions."""

from __future__ import annotations

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
