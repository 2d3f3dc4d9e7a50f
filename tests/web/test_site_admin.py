"""The site administration page: admins only; sign-up, license policy defaults, accounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.hubserver import HubServer
from tests.web.conftest import Web


@pytest.fixture
def root(hub: HubServer, passwords: None) -> Iterator[Web]:
    web = Web(hub.url)
    assert web.login("root").status_code == 303
    yield web
    web.close()


def test_only_admins_see_the_page(alice: Web, anon: Web) -> None:
    assert alice.get("/settings/site").status_code == 403
    assert "Site administration" not in alice.get("/settings/password").text
    assert anon.get("/settings/site").status_code == 303  # to the sign-in page
    assert alice.post("/settings/site", {"signup": "on", "license_mode": "strict",
                                         "license_on_conflict": "warn"}).status_code == 403


def test_admin_closes_sign_up_and_sets_the_policy(root: Web, anon: Web) -> None:
    page = root.get("/settings/site")
    assert page.status_code == 200 and "Site administration" in page.text
    saved = root.post("/settings/site", {"license_mode": "lenient", "license_on_conflict": "block"})
    assert saved.status_code == 303
    page = root.get("/settings/site").text
    assert 'value="lenient" selected' in page and 'value="block" selected' in page
    assert 'name="signup" checked' not in page
    assert anon.get("/join").status_code in (200, 403) and "closed" in anon.get("/join").text.lower()
    bad = root.post("/settings/site", {"signup": "on", "license_mode": "sometimes", "license_on_conflict": "warn"})
    assert bad.status_code == 400
    root.post("/settings/site", {"signup": "on", "license_mode": "strict", "license_on_conflict": "warn"})
    assert 'name="signup" checked' in root.get("/settings/site").text


def test_admin_disables_and_enables_an_account(root: Web, hub: HubServer, new_user: Callable[[], str]) -> None:
    name = new_user()
    victim = Web(hub.url)
    assert victim.login(name).status_code == 303
    assert root.post("/settings/site/users", {"user": name, "change": "disable"}).status_code == 303
    assert victim.get("/settings/tokens").status_code == 303  # signed out everywhere
    assert victim.login(name).status_code != 303
    assert root.post("/settings/site/users", {"user": name, "change": "enable"}).status_code == 303
    assert victim.login(name).status_code == 303
    assert root.post("/settings/site/users", {"user": "root", "change": "disable"}).status_code == 400
    victim.close()
