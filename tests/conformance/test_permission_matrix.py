"""Every route x every kind of caller x {public, private, gated}: the expected status, never a private byte.

The route list comes from the app itself (its OpenAPI schema), so a new route fails this test until
it is given a rule here. Allowed calls must get past authorisation (any status but 401/403 and
RepoNotFound); denied calls must get exactly the status the Hub gives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.hubserver import HubServer, free_port, new_home

SECRET = b"TOP-SECRET-" + os.urandom(16).hex().encode()
ACTORS = ["anonymous", "bob", "reader", "contributor", "writer", "orgadmin", "read-token", "write-token",
          "fg-other", "revoked", "expired"]
# The user behind each caller, and their role in organisation `acme`.
ROLE = {"anonymous": None, "bob": None, "reader": "read", "contributor": "contributor", "writer": "write",
        "orgadmin": "admin", "read-token": "admin", "write-token": "admin", "fg-other": "admin",
        "revoked": None, "expired": None}
RANK = {None: 0, "read": 1, "contributor": 2, "write": 3, "admin": 4}
VISIBILITIES = ["public", "private", "gated"]


@dataclass(frozen=True)
class Rule:
    kind: str  # see | read | discuss | write | admin | public | auth | site-admin | create | signed
    destructive: bool = False


# (method, route template) -> rule. Repo routes are filled in for each visibility.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/commons/health"): Rule("public-noauth"),
    ("POST", "/api/validate-yaml"): Rule("public-noauth"),
    ("GET", "/api/models"): Rule("public"),
    ("GET", "/api/datasets"): Rule("public"),
    ("POST", "/api/commons/users"): Rule("public"),
    ("GET", "/api/whoami-v2"): Rule("auth"),
    ("GET", "/api/commons/tokens"): Rule("auth"),
    ("POST", "/api/commons/tokens"): Rule("auth-write"),
    ("DELETE", "/api/commons/tokens/{name}"): Rule("auth-write"),
    ("POST", "/api/commons/orgs"): Rule("auth-write"),
    ("GET", "/api/commons/orgs/{org}"): Rule("public"),
    ("PUT", "/api/commons/orgs/{org}/members/{user}"): Rule("org-admin"),
    # The member removed is bob: members may leave on their own, so bob passes (and gets "not a member").
    ("DELETE", "/api/commons/orgs/{org}/members/{user}"): Rule("org-admin-or-bob"),
    ("PUT", "/api/commons/users/{name}"): Rule("site-admin"),
    ("PUT", "/api/commons/settings"): Rule("site-admin"),
    ("GET", "/api/commons/audit"): Rule("org-admin-read"),
    ("GET", "/api/commons/audit/export"): Rule("org-admin-read"),
    ("GET", "/api/commons/audit/verify"): Rule("site-admin"),
    ("POST", "/api/commons/jobs"): Rule("auth-write"),
    ("GET", "/api/commons/jobs"): Rule("auth"),
    ("GET", "/api/commons/jobs/{job_id}"): Rule("auth"),
    ("GET", "/api/commons/jobs/{job_id}/events"): Rule("auth"),
    ("POST", "/api/commons/jobs/{job_id}/cancel"): Rule("auth-write"),
    ("POST", "/api/commons/evals"): Rule("auth-write"),
    ("GET", "/api/commons/evals/models/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/commons/evals/leaderboard"): Rule("public"),
    ("GET", "/api/commons/fit/{repo_type}/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/commons/license/{repo_type}/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/commons/license/{repo_type}/{namespace}/{name}/ask"): Rule("see"),
    ("GET", "/api/commons/lineage/{repo_type}/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/commons/openness/{repo_type}/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/commons/policy/{namespace}"): Rule("public-noauth"),
    ("PUT", "/api/commons/policy/{namespace}"): Rule("org-admin"),
    ("POST", "/api/repos/create"): Rule("create"),
    ("DELETE", "/api/repos/delete"): Rule("admin", destructive=True),
    ("PUT", "/api/{repo_type}/{namespace}/{name}/settings"): Rule("admin", destructive=True),
    ("GET", "/api/{repo_type}/{namespace}/{name}"): Rule("see"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/revision/{revision}"): Rule("see"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/tree/{revision}"): Rule("see"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/tree/{revision}/{path}"): Rule("see"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/paths-info/{revision}"): Rule("see"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/refs"): Rule("see"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/commits/{revision}"): Rule("see"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/branch/{branch}"): Rule("write"),
    ("DELETE", "/api/{repo_type}/{namespace}/{name}/branch/{branch}"): Rule("write", destructive=True),
    ("POST", "/api/{repo_type}/{namespace}/{name}/tag/{revision}"): Rule("write"),
    ("DELETE", "/api/{repo_type}/{namespace}/{name}/tag/{tag}"): Rule("write", destructive=True),
    ("POST", "/api/{repo_type}/{namespace}/{name}/preupload/{revision}"): Rule("write"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/commit/{revision}"): Rule("write"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/discussions"): Rule("see"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/discussions"): Rule("discuss"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/discussions/{num}"): Rule("see"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/comment"): Rule("discuss"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/status"): Rule("write"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/title"): Rule("write"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/merge"): Rule("write", destructive=True),
    ("POST", "/api/{repo_type}/{namespace}/{name}/like"): Rule("discuss"),
    ("DELETE", "/api/{repo_type}/{namespace}/{name}/like"): Rule("discuss"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/likers"): Rule("see"),
    ("GET", "/api/users/{user}/likes"): Rule("public"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request"): Rule("ask"),
    ("GET", "/api/{repo_type}/{namespace}/{name}/user-access-request/{status}"): Rule("admin"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request/handle"): Rule("admin"),
    ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request/grant"): Rule("admin"),
    ("POST", "/{namespace}/{name}/info/lfs/objects/batch"): Rule("read"),
    ("POST", "/datasets/{namespace}/{name}/info/lfs/objects/batch"): Rule("read"),
    ("POST", "/{namespace}/{name}/info/lfs/verify"): Rule("discuss"),
    ("POST", "/datasets/{namespace}/{name}/info/lfs/verify"): Rule("discuss"),
    ("GET", "/{namespace}/{name}/resolve/{revision}/{path}"): Rule("read"),
    ("HEAD", "/{namespace}/{name}/resolve/{revision}/{path}"): Rule("read"),
    ("GET", "/datasets/{namespace}/{name}/resolve/{revision}/{path}"): Rule("read"),
    ("HEAD", "/datasets/{namespace}/{name}/resolve/{revision}/{path}"): Rule("read"),
    ("GET", "/{namespace}/{name}/info/refs"): Rule("read"),
    ("GET", "/datasets/{namespace}/{name}/info/refs"): Rule("read"),
    ("POST", "/{namespace}/{name}/git-upload-pack"): Rule("read"),
    ("POST", "/datasets/{namespace}/{name}/git-upload-pack"): Rule("read"),
    ("POST", "/{namespace}/{name}/git-receive-pack"): Rule("never"),
    ("POST", "/datasets/{namespace}/{name}/git-receive-pack"): Rule("never"),
    ("GET", "/blobs/{sha256}"): Rule("signed"),
    ("HEAD", "/blobs/{sha256}"): Rule("signed"),
    ("PUT", "/upload/{sha256}"): Rule("signed"),
}


def app_routes() -> set[tuple[str, str]]:
    from commons.app import create_app
    from commons.config import Settings

    app = create_app(Settings(home=tempfile.mkdtemp(prefix="commons-routes-")))
    out = set()
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            out.add((method.upper(), path))
    return out


def test_every_route_has_a_rule() -> None:
    routes = app_routes()
    assert routes - set(RULES) == set(), "new routes need a rule in the permission matrix"
    assert set(RULES) - routes == set(), "rules for routes that no longer exist"


# ---------------------------------------------------------------- the hub under test
@dataclass
class World:
    hub: HubServer
    tokens: dict[str, str | None]
    blob_sha: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    from commons.accounts.actors import Role
    from commons.accounts.orgs import create_org, set_member
    from commons.accounts.tokens import actor_for, issue_token, revoke_token
    from commons.accounts.users import create_user, get_user
    from commons.config import Settings
    from commons.services import build_services

    hub = HubServer(new_home(), free_port(), extra_env={"COMMONS_AUTH_FAILURES_PER_MINUTE": "1000000"})
    hub.provision()
    services = build_services(Settings(home=hub.home))
    toks: dict[str, str | None] = {"anonymous": None, "bob": hub.tokens["bob"]}
    with services.session() as s:
        users = {n: create_user(s, n) for n in ("reader", "contributor", "writer", "orgadmin")}
        admin = users["orgadmin"]
        org = create_org(s, actor_for(s, admin, "write"), "acme")
        for n in ("reader", "contributor", "writer"):
            set_member(s, actor_for(s, admin, "write"), org, users[n], Role(ROLE[n]))
        for n in ("reader", "contributor", "writer", "orgadmin"):
            toks[n] = issue_token(s, users[n], "w", "write")
        toks["read-token"] = issue_token(s, admin, "r", "read")
        toks["write-token"] = issue_token(s, admin, "w2", "write")
        toks["fg-other"] = issue_token(s, admin, "fg", "fine-grained",
                                       scopes=[{"resource": "model:acme/other", "actions": ["read", "write"]}])
        toks["revoked"] = issue_token(s, users["writer"], "gone", "write")
        revoke_token(s, users["writer"], "gone")
        toks["expired"] = issue_token(s, users["writer"], "old", "write",
                                      expires_at=datetime.now(UTC) - timedelta(days=1))
        assert get_user(s, "bob") is not None
    services.close()
    hub.start()
    yield World(hub, toks, hashlib.sha256(SECRET).hexdigest())
    hub.stop()


def _make_repos(w: World, suffix: str) -> dict[str, str]:
    api = w.hub.api(None).__class__(endpoint=w.hub.url, token=w.tokens["orgadmin"])
    names = {}
    for vis in VISIBILITIES:
        rid = f"acme/{vis}-{suffix}"
        api.create_repo(rid, private=vis == "private")
        api.upload_file(path_or_fileobj=SECRET, path_in_repo="secret.bin", repo_id=rid)
        api.create_branch(rid, branch="b1")
        api.create_tag(rid, tag="t1")
        api.create_pull_request(rid, title="pr")
        if vis == "gated":
            api.update_repo_settings(rid, gated="manual")
        names[vis] = rid
    return names


# ---------------------------------------------------------------- the oracle
def _can_see(actor: str, vis: str) -> bool:
    if actor == "fg-other":
        return vis != "private"
    return vis != "private" or RANK[ROLE[actor]] >= 1


def expected(rule: str, actor: str, vis: str | None) -> int | str:
    """The status a denied call gets, or "ok" when the call must pass authorisation."""
    if actor in ("revoked", "expired"):
        if rule == "never":
            return 403
        return "ok" if rule in ("signed", "public-noauth") else 401
    role = RANK[ROLE[actor]]
    anon = actor == "anonymous"
    cred_write = actor not in ("read-token",)
    scoped_out = actor == "fg-other"  # a scoped token acting outside its scope
    if rule == "never":
        return 403
    if rule in ("public", "signed", "public-noauth"):
        return "ok"
    if rule == "org-admin-read":
        return 401 if anon else ("ok" if role == 4 and not scoped_out else 403)
    if rule == "auth":
        return 401 if anon else "ok"
    if rule == "auth-write":
        return 401 if anon else ("ok" if cred_write and not scoped_out else 403)
    if rule == "site-admin":
        return 401 if anon else 403
    if rule == "org-admin-or-bob" and actor == "bob":
        return "ok"
    if rule in ("org-admin", "org-admin-or-bob"):
        return 401 if anon else ("ok" if role == 4 and cred_write and not scoped_out else 403)
    if rule == "create":
        return 401 if anon else ("ok" if role >= 3 and cred_write and not scoped_out else 403)
    assert vis is not None
    if not _can_see(actor, vis):
        return 401 if anon else 404
    if rule == "see":
        return "ok"
    if rule == "ask":
        return 401 if anon else ("ok" if vis == "gated" else 400)
    if rule == "read":
        if vis != "gated":
            return "ok"
        ok = role >= 3 and not scoped_out
        return "ok" if ok else (401 if anon else 403)
    if anon:
        return 401
    if scoped_out:
        return 403
    if rule == "discuss":
        if not cred_write:
            return 403
        return "ok" if vis != "private" or role >= 2 else 403
    need = 3 if rule == "write" else 4
    return "ok" if role >= need and cred_write else 403


# ---------------------------------------------------------------- requests
def _request(w: World, method: str, template: str, rid: str | None) -> tuple[str, str, dict[str, Any]]:
    ns, name = rid.split("/") if rid else ("acme", "none")
    fill = {"repo_type": "models", "namespace": ns, "name": name, "revision": "main", "path": "secret.bin",
            "branch": "b1", "tag": "t1", "num": "1", "status": "pending", "org": "acme", "user": "reader",
            "sha256": w.blob_sha, "job_id": "999999"}
    path = template
    for key, value in fill.items():
        path = path.replace("{" + key + "}", value)
    if template.startswith("/datasets/") and rid:
        path = path.replace(f"/datasets/{ns}/{name}", f"/{ns}/{name}")  # same repo through the model route
    if "/info/lfs/" in template or template.endswith(("git-upload-pack", "git-receive-pack", "/info/refs")):
        path = path.replace(f"/{name}/", f"/{name}.git/", 1)
    if template.startswith("/datasets/"):
        path = path.removeprefix("/datasets")  # dataset routes: exercised on the model twin (same code)
    kw: dict[str, Any] = {}
    body: dict[str, Any] = {
        ("POST", "/api/commons/jobs"): {"kind": "finetune", "spec": {}},
        ("POST", "/api/commons/evals"): {"model": "acme/none", "tasks": []},
        ("POST", "/api/validate-yaml"): {"content": "---\nlicense: mit\n---\n"},
        ("POST", "/api/commons/users"): {"name": f"u{os.urandom(4).hex()}", "password": "long enough password"},
        ("POST", "/api/commons/tokens"): {"name": "x", "role": "read"},
        ("POST", "/api/commons/orgs"): {"name": f"o{os.urandom(4).hex()}"},
        ("PUT", "/api/commons/orgs/{org}/members/{user}"): {"role": "read"},
        ("PUT", "/api/commons/users/{name}"): {"disabled": False},
        ("PUT", "/api/commons/settings"): {"signup_enabled": True},
        ("PUT", "/api/commons/policy/{namespace}"): {"license_on_conflict": "warn"},
        ("POST", "/api/repos/create"): {"name": f"n{os.urandom(4).hex()}", "organization": "acme"},
        ("DELETE", "/api/repos/delete"): {"name": name, "organization": ns},
        ("PUT", "/api/{repo_type}/{namespace}/{name}/settings"): {"gated": False} if rid and "gated" not in rid
        else {"gated": "manual"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/branch/{branch}"): {},
        ("POST", "/api/{repo_type}/{namespace}/{name}/tag/{revision}"): {"tag": f"t{os.urandom(3).hex()}"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/preupload/{revision}"): {"files": []},
        ("POST", "/api/{repo_type}/{namespace}/{name}/discussions"): {"title": "hello"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/comment"): {"comment": "hi"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/status"): {"status": "open"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/title"): {"title": "renamed"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/discussions/{num}/merge"): {},
        ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request"): {"fields": {}},
        ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request/handle"): {"user": "bob",
                                                                                     "status": "accepted"},
        ("POST", "/api/{repo_type}/{namespace}/{name}/user-access-request/grant"): {"user": "bob"},
        ("POST", "/{namespace}/{name}/info/lfs/objects/batch"): {"operation": "download",
                                                                 "objects": [{"oid": w.blob_sha, "size": 1}]},
        ("POST", "/{namespace}/{name}/info/lfs/verify"): {"oid": w.blob_sha, "size": len(SECRET)},
    }.get((method, template.removeprefix("/datasets")))
    if body is not None:
        kw["json"] = body
    if template.endswith("/paths-info/{revision}"):
        kw["data"] = {"paths": ["secret.bin"]}
    if template.endswith("/commit/{revision}"):
        kw["content"] = b'{"key": "header", "value": {"summary": "m"}}\n'
        kw["headers"] = {"content-type": "application/x-ndjson"}
    if template.endswith("git-upload-pack"):
        kw["content"] = b"0000"
        kw["headers"] = {"content-type": "application/x-git-upload-pack-request"}
    if template.endswith("/info/refs"):
        kw["params"] = {"service": "git-upload-pack"}
    if template.endswith("/ask"):
        kw["params"] = {"question": "commercial_use"}
    if template == "/api/commons/audit" or template == "/api/commons/audit/export":
        kw["params"] = {"namespace": "acme"}
    if method == "DELETE" and template == "/api/commons/orgs/{org}/members/{user}":
        path = path.replace("/members/reader", "/members/bob")
    if template.startswith(("/blobs/", "/upload/")):
        kw["params"] = {"size": "1", "exp": "1", "sig": "forged"}
    return method, path, kw


def _call(w: World, actor: str, method: str, path: str, kw: dict[str, Any]) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    token = w.tokens[actor]
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{w.hub.url}{path}", headers=headers, timeout=30, **kw)


REPO_RULES = ("see", "read", "discuss", "write", "admin", "ask")


@pytest.mark.parametrize(("method", "template"), sorted(RULES))
def test_matrix(world: World, method: str, template: str) -> None:
    rule = RULES[(method, template)]
    suffix = hashlib.sha1(f"{method}{template}".encode()).hexdigest()[:8]
    repos = _make_repos(world, suffix) if rule.kind in REPO_RULES else {"-": None}
    failures = []
    for vis, rid in repos.items():
        # Denied callers first: an allowed destructive call (delete, merge) must not hide a later denial.
        order = sorted(ACTORS, key=lambda a: expected(rule.kind, a, vis if rid else None) == "ok")
        for actor in order:
            want = expected(rule.kind, actor, vis if rid else None)
            if want == "ok" and rule.destructive and rid:
                rid = _make_repos(world, f"{suffix}{actor[:3]}{os.urandom(2).hex()}")[vis]
            m, path, kw = _request(world, method, template, rid)
            if rule.kind == "signed" and want == "ok":
                want = 403  # a forged signature is refused whoever calls
            r = _call(world, actor, m, path, kw)
            if SECRET in r.content and want != "ok":
                failures.append(f"{actor} {vis}: leaked the secret bytes")
            if want == "ok":
                denied = r.status_code in (401, 403) or r.headers.get("x-error-code") in ("RepoNotFound", "GatedRepo")
                if denied:
                    failures.append(f"{actor} on {vis}: expected access, got {r.status_code} {r.text[:120]}")
            elif r.status_code != want:
                failures.append(f"{actor} on {vis}: expected {want}, got {r.status_code} {r.text[:120]}")
    assert not failures, f"{method} {template}:\n" + "\n".join(failures)
