"""The jobs API: who may submit what, who sees which job, cancel; no worker runs here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from commons.accounts.tokens import issue_token
from commons.accounts.users import get_user
from commons.app import create_app
from commons.hub.ids import RepoRef, RepoType
from commons.hub.repos import Repos
from tests.jobs.conftest import LocalHub, finetune_spec


@pytest.fixture(scope="module")
def tokens(local_hub: LocalHub) -> dict[str, str]:
    out = {}
    with local_hub.services.session() as session:
        for name, admin in (("alice", False), ("bob", False), ("root", True)):
            user = get_user(session, name)
            if user is None:
                from commons.accounts.users import create_user

                user = create_user(session, name, admin=admin)
            out[name] = issue_token(session, user, "api", "write")
            out[f"{name}-read"] = issue_token(session, user, "api-read", "read")
    return out


@pytest.fixture(scope="module")
def client(local_hub: LocalHub) -> Iterator[TestClient]:
    with TestClient(create_app(services=local_hub.services)) as c:
        yield c


def _as(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def _submit(client: TestClient, tokens: dict[str, str], who: str, spec: dict[str, object]) -> tuple[int, dict]:
    r = client.post("/api/commons/jobs", json={"kind": "finetune", "spec": spec}, headers=_as(tokens, who))
    return r.status_code, r.json()


def test_submit_pins_inputs_and_is_private_to_owner(client: TestClient, tokens: dict[str, str],
                                                    local_hub: LocalHub) -> None:
    status, job = _submit(client, tokens, "alice", finetune_spec("alice/api-out"))
    assert status == 200, job
    assert job["state"] == "queued" and job["owner"] == "alice"
    assert job["spec"]["base"]["revision"] == local_hub.base and job["spec"]["dataset"]["revision"] == local_hub.dataset
    url = f"/api/commons/jobs/{job['id']}"
    assert client.get(url, headers=_as(tokens, "alice")).json()["id"] == job["id"]
    assert client.get(url, headers=_as(tokens, "root")).status_code == 200
    assert client.get(url, headers=_as(tokens, "bob")).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get(f"{url}/events", headers=_as(tokens, "bob")).status_code == 404
    assert [j["id"] for j in client.get("/api/commons/jobs", headers=_as(tokens, "alice")).json()].count(job["id"]) == 1
    assert job["id"] not in [j["id"] for j in client.get("/api/commons/jobs", headers=_as(tokens, "bob")).json()]
    everyone = client.get("/api/commons/jobs", params={"all": "true"}, headers=_as(tokens, "root")).json()
    assert job["id"] in [j["id"] for j in everyone]
    events = client.get(f"{url}/events", headers=_as(tokens, "alice")).json()
    assert [e["data"]["state"] for e in events["events"]] == ["queued"] and events["next"] == events["events"][0]["id"]

    assert client.post(f"{url}/cancel", headers=_as(tokens, "bob")).status_code == 404
    assert client.post(f"{url}/cancel", headers=_as(tokens, "alice-read")).status_code == 403
    r = client.post(f"{url}/cancel", headers=_as(tokens, "alice"))
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    again = client.post(f"{url}/cancel", headers=_as(tokens, "alice"))
    assert again.status_code == 409 and "cannot become cancelled" in again.json()["error"]


@pytest.mark.parametrize(("who", "spec", "status", "message"), [
    ("bob", finetune_spec("alice/x"), 403, "create a repo under 'alice'"),
    ("alice-read", finetune_spec("alice/x"), 403, "write token"),
    ("alice", finetune_spec("alice/tiny"), 409, "already exists"),
    ("alice", finetune_spec("alice/x", rank=0), 400, "rank must be at least 1"),
    ("alice", finetune_spec("alice/x", base="alice/nope"), 404, "Repository not found"),
    ("alice", {**finetune_spec("alice/x"), "dataset": {"repo_id": "alice/data", "revision": "nobranch"}}, 404,
     "nobranch"),
], ids=["other-namespace", "read-token", "output-exists", "bad-recipe", "missing-base", "missing-revision"])
def test_submit_refusals(client: TestClient, tokens: dict[str, str], who: str, spec: dict[str, object],
                         status: int, message: str) -> None:
    got, body = _submit(client, tokens, who, spec)
    assert got == status and message in body["error"], body


def test_private_inputs_need_read_access(client: TestClient, tokens: dict[str, str], local_hub: LocalHub) -> None:
    with local_hub.services.session() as session:
        Repos(session, local_hub.services.storage).update_settings(
            local_hub.alice, RepoRef.parse(RepoType.MODEL, "alice/bert"), private=True)
    try:
        got, body = _submit(client, tokens, "bob", finetune_spec("bob/x", base="alice/bert"))
        assert got == 404 and "alice/bert" in body["error"]
        got, body = _submit(client, tokens, "bob", finetune_spec("bob/x"))
        assert got == 200, body  # public inputs, own namespace: fine
        client.post(f"/api/commons/jobs/{body['id']}/cancel", headers=_as(tokens, "bob"))
    finally:
        with local_hub.services.session() as session:
            Repos(session, local_hub.services.storage).update_settings(
                local_hub.alice, RepoRef.parse(RepoType.MODEL, "alice/bert"), private=False)


def test_an_evaluation_goes_through_the_generic_jobs_api(client: TestClient, tokens: dict[str, str],
                                                         local_hub: LocalHub) -> None:
    """An eval writes back to the model it reads: the generic endpoint must not ask for a new repo."""
    spec = {"model": {"repo_id": "alice/tiny"},
            "tasks": [{"name": "hellaswag", "dataset": {"repo_id": "alice/data"}}], "settings": {"limit": 5}}
    r = client.post("/api/commons/jobs", json={"kind": "eval", "spec": spec}, headers=_as(tokens, "alice"))
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["kind"] == "eval" and job["state"] == "queued"
    assert job["spec"]["model"]["revision"] == local_hub.base
    assert job["spec"]["tasks"][0]["dataset"]["revision"] == local_hub.dataset
    r = client.post("/api/commons/jobs", json={"kind": "eval", "spec": spec}, headers=_as(tokens, "alice-read"))
    assert r.status_code == 403
    assert client.post(f"/api/commons/jobs/{job['id']}/cancel", headers=_as(tokens, "alice")).status_code == 200
