"""Sign in, sign out, sign up: cookies, CSRF tokens, the login rate limit, the sign-up switch."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.hubserver import HubServer
from tests.web.conftest import _FORM_TOKEN, PASSWORD, Web, audit_actions


def test_login_page_sets_a_form_cookie_and_token(anon: Web) -> None:
    page = anon.get("/login")
    assert page.status_code == 200
    assert "Sign in" in page.text and 'name="form_token"' in page.text
    cookie = page.headers["set-cookie"]
    assert "commons_form=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_login_opens_a_secure_session(anon: Web, new_user: Callable[[], str], hub_services: Any) -> None:
    name = new_user()
    response = anon.login(name, next_url="/settings/tokens")
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/tokens"
    cookie = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie if c.startswith("commons_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # plain http on loopback; https requests get Secure
    page = anon.get("/settings/tokens")
    assert page.status_code == 200 and f"Signed in as <strong>{name}</strong>" in page.text
    assert ("session.login", name) in audit_actions(hub_services, f"user:{name}")


def test_login_never_redirects_off_site(anon: Web, new_user: Callable[[], str]) -> None:
    response = anon.login(new_user(), next_url="//evil.example/x")
    assert response.headers["location"] == "/"


def test_wrong_password_is_refused(anon: Web, new_user: Callable[[], str]) -> None:
    name = new_user()
    response = anon.login(name, password="not the password at all")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert "commons_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("token", [None, "", "123.deadbeef"])
def test_login_without_a_valid_form_token_is_refused(anon: Web, new_user: Callable[[], str],
                                                     token: str | None) -> None:
    name = new_user()
    anon.get("/login")  # the browser has the form cookie, but the form lacks the matching token
    data = {"username": name, "password": PASSWORD}
    if token is not None:
        data["form_token"] = token
    response = anon.http.post("/login", data=data)
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert "commons_session" not in response.headers.get("set-cookie", "")


def test_login_form_token_is_bound_to_its_cookie(hub: HubServer, new_user: Callable[[], str]) -> None:
    """A token copied from another browser does not pass: it signs that browser's cookie nonce."""
    first, second = Web(hub.url), Web(hub.url)
    try:
        token = first.form_token()
        second.get("/login")
        response = second.http.post("/login", data={"username": new_user(), "password": PASSWORD,
                                                     "form_token": token})
        assert response.status_code == 403
    finally:
        first.close()
        second.close()


def test_logout_needs_the_session_token_and_ends_the_session(alice: Web) -> None:
    assert alice.post("/logout", csrf="wrong").status_code == 403
    assert alice.get("/settings/tokens").status_code == 200
    response = alice.post("/logout", csrf=alice.csrf())
    assert response.status_code == 303
    assert alice.get("/settings/tokens").status_code == 303  # signed out: sent to /login


def test_join_creates_an_account_and_signs_in(anon: Web, hub_services: Any) -> None:
    name = f"n-{uuid.uuid4().hex[:8]}"
    page = anon.get("/join")
    assert page.status_code == 200 and "Create your account" in page.text
    token = _FORM_TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    response = anon.http.post("/join", data={"username": name, "password": PASSWORD, "confirm": PASSWORD,
                                             "fullname": "New Person", "form_token": token})
    assert response.status_code == 303, response.text[-400:]
    assert f"Signed in as <strong>{name}</strong>" in anon.get("/").text
    assert ("user.create", name) in audit_actions(hub_services, f"user:{name}")
    again = Web(str(anon.http.base_url))
    try:
        assert again.login(name).status_code == 303
    finally:
        again.close()


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"username": "bad name!", "password": PASSWORD, "confirm": PASSWORD}, 400, "Invalid user name"),
    ({"username": "models", "password": PASSWORD, "confirm": PASSWORD}, 400, "reserved"),
    ({"username": "alice", "password": PASSWORD, "confirm": PASSWORD}, 409, "taken"),
    ({"username": "fresh-name-x", "password": "short", "confirm": "short"}, 400, "at least"),
    ({"username": "fresh-name-y", "password": PASSWORD, "confirm": PASSWORD + "x"}, 400, "differ"),
])
def test_join_shows_what_is_wrong(anon: Web, fields: dict[str, str], status: int, message: str) -> None:
    token = anon.form_token("/join")
    response = anon.http.post("/join", data={**fields, "form_token": token})
    assert response.status_code == status
    assert message in response.text
    assert "commons_session" not in response.headers.get("set-cookie", "")


def test_join_without_form_token_is_refused(anon: Web) -> None:
    anon.get("/join")
    response = anon.http.post("/join", data={"username": "csrf-victim", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 403


def test_join_can_be_disabled_by_the_admin(anon: Web, hub: HubServer, hub_services: Any) -> None:
    token = anon.form_token("/join")
    root = httpx.put(f"{hub.url}/api/commons/settings", json={"signup_enabled": False},
                     headers={"authorization": f"Bearer {hub.tokens['root']}"})
    assert root.status_code == 200
    try:
        page = anon.get("/join")
        assert page.status_code == 403 and "Sign-up is closed" in page.text
        response = anon.http.post("/join", data={"username": "closed-door", "password": PASSWORD,
                                                 "confirm": PASSWORD, "form_token": token})
        assert response.status_code == 403
        assert "disabled" in response.text
    finally:
        httpx.put(f"{hub.url}/api/commons/settings", json={"signup_enabled": True},
                  headers={"authorization": f"Bearer {hub.tokens['root']}"})
    assert anon.get("/join").status_code == 200


def _local_hub(base_url: str = "http://testserver", **settings: Any) -> tuple[TestClient, Any]:
    """An in-process hub of its own (its own limiter state) with the user carol, for TestClient tests."""
    from commons.accounts.passwords import hash_password
    from commons.accounts.users import create_user
    from commons.app import create_app
    from commons.config import Settings
    from commons.db import migrate
    from commons.services import build_services

    config = Settings(home=Path(tempfile.mkdtemp(prefix="commons-web-")), **settings)
    migrate.upgrade(config.sqlalchemy_url)
    services = build_services(config)
    with services.session() as session:
        create_user(session, "carol").password_hash = hash_password(PASSWORD)
    return TestClient(create_app(config, services), base_url=base_url, follow_redirects=False), services


def _attempt(client: TestClient, password: str) -> Any:
    page = client.get("/login")
    token = _FORM_TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": "carol", "password": password, "form_token": token})


def test_login_is_rate_limited_per_address() -> None:
    """After `login_failures_per_5min` failures from one address, even the right password gets 429."""
    client, services = _local_hub(login_failures_per_5min=2)
    with client:
        assert _attempt(client, "wrong password 1").status_code == 401
        assert _attempt(client, "wrong password 2").status_code == 401
        limited = _attempt(client, PASSWORD)
        assert limited.status_code == 429
        assert "Too many attempts" in limited.text and int(limited.headers["retry-after"]) > 0
    services.close()


def test_cookies_are_secure_over_https() -> None:
    client, services = _local_hub("https://hub.example")
    with client:
        assert "Secure" in client.get("/login").headers["set-cookie"]
        signed_in = _attempt(client, PASSWORD)
        assert signed_in.status_code == 303
        session_cookie = next(c for c in signed_in.headers.get_list("set-cookie")
                              if c.startswith("commons_session="))
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    services.close()
