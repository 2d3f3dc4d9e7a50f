"""Account settings: access tokens (shown once, usable, revocable) and the password (closes other sessions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from tests.hubserver import HubServer
from tests.web.conftest import PASSWORD, Web, audit_actions

_SECRET = re.compile(r'value="(cm_[A-Za-z0-9_-]+)"')


def _whoami(hub: HubServer, token: str) -> httpx.Response:
    return httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {token}"})


def test_settings_pages_need_sign_in(anon: Web) -> None:
    for path in ("/settings/tokens", "/settings/password"):
        response = anon.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path.replace('/', '%2F')}"


def test_token_is_shown_once_and_works(hub: HubServer, signed_in_user: tuple[str, Web], hub_services: Any) -> None:
    name, web = signed_in_user
    created = web.post("/settings/tokens", {"name": "laptop", "role": "write"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = _SECRET.search(created.text).group(1)  # type: ignore[union-attr]
    assert "shown <strong>only once</strong>" in created.text
    who = _whoami(hub, secret)
    assert who.status_code == 200 and who.json()["name"] == name
    assert who.json()["auth"]["accessToken"]["role"] == "write"
    listing = web.get("/settings/tokens")
    assert "laptop" in listing.text and secret[:8] in listing.text
    assert secret not in listing.text  # never again
    assert ("token.create", name) in audit_actions(hub_services, f"user:{name}")


def test_read_and_fine_grained_tokens(hub: HubServer, signed_in_user: tuple[str, Web]) -> None:
    name, web = signed_in_user
    read = web.post("/settings/tokens", {"name": "reader", "role": "read", "expires_in_days": "30"})
    assert read.status_code == 201
    secret = _SECRET.search(read.text).group(1)  # type: ignore[union-attr]
    assert _whoami(hub, secret).json()["auth"]["accessToken"]["role"] == "read"
    fine = web.post("/settings/tokens", {
        "name": "scoped", "role": "fine-grained",
        "scope_resource": [f"model:{name}/thing", "", ""], "scope_read": ["0"], "scope_write": ["0"],
    })
    assert fine.status_code == 201, fine.text[-400:]
    scoped = _whoami(hub, _SECRET.search(fine.text).group(1)).json()  # type: ignore[union-attr]
    assert scoped["auth"]["accessToken"]["fineGrained"]["scoped"] == [
        {"entity": {"type": "model", "name": f"{name}/thing"}, "permissions": ["read", "write"]}]
    bad = web.post("/settings/tokens", {"name": "empty", "role": "fine-grained"})
    assert bad.status_code == 400 and "at least one" in bad.text


def test_revoke_stops_a_token(hub: HubServer, signed_in_user: tuple[str, Web], hub_services: Any) -> None:
    name, web = signed_in_user
    created = web.post("/settings/tokens", {"name": "short-lived", "role": "read"})
    secret = _SECRET.search(created.text).group(1)  # type: ignore[union-attr]
    revoked = web.post("/settings/tokens/revoke", {"name": "short-lived"})
    assert revoked.status_code == 303
    assert _whoami(hub, secret).status_code == 401
    assert "1 revoked token" in web.get("/settings/tokens").text
    assert ("token.revoke", name) in audit_actions(hub_services, f"user:{name}")


def test_token_forms_need_the_session_csrf_token(signed_in_user: tuple[str, Web]) -> None:
    _, web = signed_in_user
    assert web.post("/settings/tokens", {"name": "x", "role": "write"}, csrf=None).status_code == 403
    assert web.post("/settings/tokens", {"name": "x", "role": "write"}, csrf="not-the-token").status_code == 403
    assert "x" not in re.findall(r"<strong>([^<]+)</strong>", web.get("/settings/tokens").text)


def test_other_sessions_tokens_do_not_pass(hub: HubServer, signed_in_user: tuple[str, Web], alice: Web) -> None:
    """One session's CSRF token is useless to another signed-in browser."""
    _, web = signed_in_user
    response = alice.post("/settings/tokens", {"name": "stolen", "role": "write"}, csrf=web.csrf())
    assert response.status_code == 403


def test_password_change_closes_other_sessions(hub: HubServer, new_user: Callable[[], str],
                                               hub_services: Any) -> None:
    name = new_user()
    here, elsewhere = Web(hub.url), Web(hub.url)
    try:
        assert here.login(name).status_code == 303
        assert elsewhere.login(name).status_code == 303
        wrong = here.post("/settings/password", {"current": "not my password", "new": "a brand new password",
                                                 "confirm": "a brand new password"})
        assert wrong.status_code == 400 and "not right" in wrong.text
        changed = here.post("/settings/password", {"current": PASSWORD, "new": "a brand new password",
                                                   "confirm": "a brand new password"})
        assert changed.status_code == 303
        assert "signed out" in here.get(changed.headers["location"]).text  # this browser stays signed in
        assert elsewhere.get("/settings/tokens").status_code == 303  # the other one is signed out
        assert elsewhere.login(name).status_code == 401  # the old password is gone
        assert elsewhere.login(name, "a brand new password").status_code == 303
        assert ("user.password", name) in audit_actions(hub_services, f"user:{name}")
    finally:
        here.close()
        elsewhere.close()


def test_password_change_checks_the_new_password(signed_in_user: tuple[str, Web]) -> None:
    _, web = signed_in_user
    short = web.post("/settings/password", {"current": PASSWORD, "new": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least" in short.text
    differ = web.post("/settings/password", {"current": PASSWORD, "new": "long enough pass 1",
                                             "confirm": "long enough pass 2"})
    assert differ.status_code == 400 and "differ" in differ.text
