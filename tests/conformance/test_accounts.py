"""Accounts, organisations, tokens, gating and the audit log, through the real client and the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from tests.hubserver import HubServer, free_port, new_home


def _post(hub: HubServer, path: str, token: str | None, json: object, method: str = "POST") -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{hub.url}{path}", json=json, headers=headers)


def _new_user(hub: HubServer, name: str, role: str = "write", scopes: list[dict] | None = None) -> str:
    """Sign up through the API (as admin, so it works with sign-up closed) and return a token."""
    r = _post(hub, "/api/commons/users", hub.tokens["root"], {"name": name, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    # An admin cannot mint tokens for others over HTTP; the CLI path is the operator's.
    from commons.accounts.tokens import issue_token
    from commons.accounts.users import get_user
    from commons.config import Settings
    from commons.services import build_services

    services = build_services(Settings(home=hub.home, database_url=hub.database_url))
    with services.session() as session:
        user = get_user(session, name)
        assert user is not None
        token = issue_token(session, user, "t", role, scopes=scopes)
    services.close()
    return token


def _org(hub: HubServer, owner_token: str, name: str, members: dict[str, str]) -> None:
    assert _post(hub, "/api/commons/orgs", owner_token, {"name": name}).status_code == 200
    for user, role in members.items():
        r = _post(hub, f"/api/commons/orgs/{name}/members/{user}", owner_token, {"role": role}, "PUT")
        assert r.status_code == 200, r.text


def test_org_roles(hub: HubServer, repo_name: str) -> None:
    org = f"org-{repo_name}"
    reader, contributor, writer = (f"{k}-{repo_name}"[:40] for k in ("rd", "ct", "wr"))
    tokens = {u: _new_user(hub, u) for u in (reader, contributor, writer)}
    _org(hub, hub.alice_token, org, {reader: "read", contributor: "contributor", writer: "write"})
    rid = f"{org}/private-model"
    hub.api().create_repo(rid, private=True)
    hub.api().upload_file(path_or_fileobj=b"secret", path_in_repo="w.txt", repo_id=rid)
    api = {u: hub.api(None).__class__(endpoint=hub.url, token=t) for u, t in tokens.items()}
    # everyone in the org sees and reads it; bob (outsider) does not even learn it exists
    for user in tokens:
        assert api[user].model_info(rid).private is True
    with pytest.raises(RepositoryNotFoundError):
        hub.api("bob").model_info(rid)
    assert rid in {m.id for m in api[reader].list_models(author=org)}
    assert rid not in {m.id for m in hub.api("bob").list_models(author=org)}
    # reader: no PRs, no commits; contributor: PRs but no commits; writer: commits
    with pytest.raises(HfHubHTTPError) as err:
        api[reader].create_commit(rid, [CommitOperationAdd("r.txt", b"r")], commit_message="r", create_pr=True)
    assert err.value.response.status_code == 403
    pr = api[contributor].create_commit(rid, [CommitOperationAdd("c.txt", b"c")], commit_message="c",
                                        create_pr=True)
    assert pr.pr_revision == "refs/pr/1"
    with pytest.raises(HfHubHTTPError) as err:
        api[contributor].upload_file(path_or_fileobj=b"c", path_in_repo="c.txt", repo_id=rid)
    assert err.value.response.status_code == 403
    api[writer].upload_file(path_or_fileobj=b"w", path_in_repo="w2.txt", repo_id=rid)
    # settings and deletion are for org admins only
    with pytest.raises(HfHubHTTPError) as err:
        api[writer].update_repo_settings(rid, private=False)
    assert err.value.response.status_code == 403
    # writers can create repos in the org, readers cannot
    api[writer].create_repo(f"{org}/by-writer")
    with pytest.raises(HfHubHTTPError):
        api[reader].create_repo(f"{org}/by-reader")
    assert hub.api(None).whoami(token=tokens[writer])["orgs"] == [{"type": "org", "name": org, "fullname": org,
                                                                   "roleInOrg": "write"}]


def test_org_keeps_its_last_admin(hub: HubServer, repo_name: str) -> None:
    org = f"solo-{repo_name}"
    _org(hub, hub.alice_token, org, {})
    r = _post(hub, f"/api/commons/orgs/{org}/members/alice", hub.alice_token, {}, "DELETE")
    assert r.status_code == 400 and "last admin" in r.json()["error"]
    r = _post(hub, f"/api/commons/orgs/{org}/members/alice", hub.alice_token, {"role": "write"}, "PUT")
    assert r.status_code == 400
    r = _post(hub, f"/api/commons/orgs/{org}/members/bob", hub.bob_token, {"role": "admin"}, "PUT")
    assert r.status_code == 403


def test_fine_grained_token(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    mine, other = f"alice/{repo_name}-a", f"alice/{repo_name}-b"
    api.create_repo(mine)
    api.create_repo(other, private=True)
    from commons.accounts.tokens import issue_token
    from commons.accounts.users import get_user
    from commons.config import Settings
    from commons.services import build_services

    services = build_services(Settings(home=hub.home, database_url=hub.database_url))
    with services.session() as session:
        user = get_user(session, "alice")
        assert user is not None
        scoped = issue_token(session, user, "scoped", "fine-grained",
                             scopes=[{"resource": f"model:{mine}", "actions": ["read", "write"]}])
    services.close()
    fg = api.__class__(endpoint=hub.url, token=scoped)
    fg.upload_file(path_or_fileobj=b"ok", path_in_repo="ok.txt", repo_id=mine)
    with pytest.raises(RepositoryNotFoundError):
        fg.model_info(other)  # a private repo outside the scope is invisible
    with pytest.raises(HfHubHTTPError) as err:
        fg.create_repo(f"alice/{repo_name}-c")
    assert err.value.response.status_code == 403
    who = fg.whoami()
    assert who["auth"]["accessToken"]["role"] == "fine-grained"
    assert who["auth"]["accessToken"]["fineGrained"]["scoped"][0]["entity"] == {"type": "model", "name": mine}


def test_read_token_cannot_write(hub: HubServer, repo_name: str) -> None:
    hub.api().create_repo(f"alice/{repo_name}")
    with pytest.raises(HfHubHTTPError) as err:
        hub.api("alice-read").upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=f"alice/{repo_name}")
    assert err.value.response.status_code == 403
    assert hub.api("alice-read").whoami()["auth"]["accessToken"]["role"] == "read"


def test_disabled_user_and_revoked_token_stop_at_once(hub: HubServer, repo_name: str) -> None:
    name = f"dis-{repo_name}"[:30]
    token = _new_user(hub, name)
    assert hub.api(None).whoami(token=token)["name"] == name
    r = _post(hub, f"/api/commons/users/{name}", hub.tokens["root"], {"disabled": True}, "PUT")
    assert r.status_code == 200
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(None).whoami(token=token)
    assert err.value.response.status_code == 401
    _post(hub, f"/api/commons/users/{name}", hub.tokens["root"], {"disabled": False}, "PUT")
    created = _post(hub, "/api/commons/tokens", token, {"name": "short", "role": "read"}).json()["token"]
    assert hub.api(None).whoami(token=created)["name"] == name
    assert _post(hub, "/api/commons/tokens/short", token, {}, "DELETE").status_code == 200
    with pytest.raises(HfHubHTTPError) as err:
        hub.api(None).whoami(token=created)
    assert err.value.response.status_code == 401


def test_signup_can_be_disabled(hub: HubServer, repo_name: str) -> None:
    r = _post(hub, "/api/commons/users", None, {"name": f"s1-{repo_name}", "password": "long enough pw"})
    assert r.status_code == 200
    assert _post(hub, "/api/commons/settings", hub.tokens["root"], {"signup_enabled": False}, "PUT").status_code == 200
    try:
        r = _post(hub, "/api/commons/users", None, {"name": f"s2-{repo_name}", "password": "long enough pw"})
        assert r.status_code == 403
    finally:
        _post(hub, "/api/commons/settings", hub.tokens["root"], {"signup_enabled": True}, "PUT")
    r = _post(hub, "/api/commons/users", None, {"name": f"s3-{repo_name}", "password": "short"})
    assert r.status_code == 400


def test_gated_access_requests(hub: HubServer, repo_name: str, hf_home: Path) -> None:
    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid)
    api.upload_file(path_or_fileobj=b"---\nextra_gated_fields:\n  Affiliation: text\n---\n", path_in_repo="README.md",
                    repo_id=rid)
    api.upload_file(path_or_fileobj=b"w", path_in_repo="w.bin", repo_id=rid)
    api.update_repo_settings(rid, gated="manual")
    with pytest.raises(GatedRepoError):
        hf_hub_download(rid, "w.bin", token=hub.bob_token)
    path = f"/api/models/{rid}/user-access-request"
    assert _post(hub, path, hub.bob_token, {"fields": {}}).status_code == 400  # the card asks for Affiliation
    assert _post(hub, path, hub.bob_token, {"fields": {"Affiliation": "Uni"}}).json() == {"status": "pending"}
    pending = list(api.list_pending_access_requests(rid))
    assert [(p.username, p.fields) for p in pending] == [("bob", {"Affiliation": "Uni"})]
    with pytest.raises(HfHubHTTPError):
        list(hub.api("bob").list_pending_access_requests(rid))
    api.reject_access_request(rid, "bob", rejection_reason="no")
    assert [p.username for p in api.list_rejected_access_requests(rid)] == ["bob"]
    api.accept_access_request(rid, "bob")
    assert Path(hf_hub_download(rid, "w.bin", token=hub.bob_token)).read_bytes() == b"w"
    other = _new_user(hub, f"g-{repo_name}"[:30])
    api.grant_access(rid, f"g-{repo_name}"[:30])
    assert Path(hf_hub_download(rid, "w.bin", token=other, force_download=True)).read_bytes() == b"w"


def test_audit_log_records_and_verifies(hub: HubServer, repo_name: str) -> None:
    api = hub.api()
    rid = f"alice/{repo_name}"
    api.create_repo(rid)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=rid)
    root = {"authorization": f"Bearer {hub.tokens['root']}"}
    events = httpx.get(f"{hub.url}/api/commons/audit", params={"namespace": "alice"}, headers=root).json()
    mine = [e for e in events if e["target"] == f"model:{rid}"]
    assert [e["action"] for e in mine] == ["repo.commit", "repo.create"]
    assert mine[0]["actor"] == "alice" and mine[0]["token"] == "test" and len(mine[0]["details"]["commit"]) == 40
    assert httpx.get(f"{hub.url}/api/commons/audit/verify", headers=root).json()["ok"] is True
    # alice administers her own namespace's log; bob may not read it
    assert httpx.get(f"{hub.url}/api/commons/audit", params={"namespace": "alice"},
                     headers={"authorization": f"Bearer {hub.alice_token}"}).status_code == 200
    assert httpx.get(f"{hub.url}/api/commons/audit", params={"namespace": "alice"},
                     headers={"authorization": f"Bearer {hub.bob_token}"}).status_code == 403
    export = httpx.get(f"{hub.url}/api/commons/audit/export", headers=root)
    assert export.status_code == 200 and export.text.count("\n") >= 2


def test_failed_token_attempts_are_rate_limited() -> None:
    server = HubServer(new_home(), free_port(), extra_env={"COMMONS_AUTH_FAILURES_PER_MINUTE": "5"})
    server.provision()
    server.start()
    try:
        codes = [httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": f"Bearer nope-{i}"},
                           ).status_code for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
        ok = httpx.get(f"{server.url}/api/whoami-v2", headers={"authorization": f"Bearer {server.alice_token}"})
        assert ok.status_code == 429  # the address is blocked, whatever it sends, until the window passes
    finally:
        server.stop()
