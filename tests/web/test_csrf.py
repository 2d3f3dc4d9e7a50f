"""Every form of the web UI that changes state refuses a POST without its CSRF token.

The list of forms comes from the UI's own routers, so a new POST route is checked as soon as it exists.
Dataset pages share their handlers with model pages, so the model routes stand for both.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tests.web.conftest import Web


def web_posts() -> list[str]:
    import commons.web.routes  # noqa: F401 - registers every page on the routers below
    from commons.web import reporoutes
    from commons.web.pages import accounts, browse, profiles, settings, static

    paths = []
    for router in (static.router, accounts.router, settings.router, browse.router, reporoutes.models_router,
                   profiles.router):
        paths += [r.path for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    return sorted(set(paths))


def test_every_form_is_listed() -> None:
    posts = web_posts()
    assert "/login" in posts and "/{namespace}/{name}/discussions/{num}/merge" in posts
    assert "/{namespace}/{name}/settings/delete" in posts


@pytest.mark.parametrize("template", web_posts())
def test_post_without_token_is_refused(template: str, model: str, alice: Web, anon: Web) -> None:
    name = model.split("/")[1]
    if "{num}" in template:
        alice.post(f"/{model}/discussions/new", {"title": "A discussion"})  # discussion #1
    path = template.replace("{namespace}", "alice").replace("{name}", name).replace("{num}", "1")
    fields = {"title": "x", "comment": "x", "status": "closed", "name": "x", "role": "read", "visibility": "private",
              "gated_mode": "manual", "confirm": model, "username": "alice", "user": "bob", "current": "x",
              "new": "long enough password"}
    for who in (anon, alice):
        who.get("/login")  # holds the anonymous form cookie, but sends no token
        response = who.post(path, fields, csrf=None)
        assert response.status_code == 403, (path, response.status_code)
        response = who.post(path, {**fields, "csrf": "forged", "form_token": "1.forged"}, csrf=None)
        assert response.status_code == 403, (path, response.status_code)
    page = alice.get(f"/{model}")
    assert page.status_code == 200 and "Private" not in page.text  # nothing changed
