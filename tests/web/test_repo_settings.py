"""Repo settings in the UI: admins only; visibility, gating, deletion with confirmation; all audited."""

from __future__ import annotations

from typing import Any

from tests.hubserver import HubServer
from tests.web.conftest import Web, audit_actions


def test_settings_are_for_admins(model: str, alice: Web, bob: Web, anon: Web) -> None:
    assert alice.get(f"/{model}/settings").status_code == 200
    assert bob.get(f"/{model}/settings").status_code == 403
    assert anon.get(f"/{model}/settings").status_code == 303  # sign in first
    assert bob.post(f"/{model}/settings/visibility", {"visibility": "private"}).status_code == 403
    assert bob.post(f"/{model}/settings/delete", {"confirm": model}).status_code == 403
    assert anon.get(f"/{model}").status_code == 200  # nothing changed


def test_visibility_and_gating(hub: HubServer, model: str, alice: Web, bob: Web, hub_services: Any) -> None:
    made_private = alice.post(f"/{model}/settings/visibility", {"visibility": "private"})
    assert made_private.status_code == 303
    assert hub.api("alice").model_info(model).private is True
    assert bob.get(f"/{model}").status_code == 404
    assert alice.post(f"/{model}/settings/visibility", {"visibility": "public"}).status_code == 303
    assert bob.get(f"/{model}").status_code == 200
    assert alice.post(f"/{model}/settings/gating", {"gated_mode": "manual"}).status_code == 303
    assert hub.api("alice").model_info(model).gated == "manual"
    assert bob.get(f"/{model}/blob/main/config.json").status_code == 403
    assert alice.post(f"/{model}/settings/gating", {"gated_mode": "sometimes"}).status_code == 400
    assert alice.post(f"/{model}/settings/gating", {"gated_mode": "none"}).status_code == 303
    assert bob.get(f"/{model}/blob/main/config.json").status_code == 200
    actions = audit_actions(hub_services, model)
    assert actions.count(("repo.settings", "alice")) == 4


def test_settings_forms_need_csrf(model: str, alice: Web) -> None:
    assert alice.post(f"/{model}/settings/visibility", {"visibility": "private"}, csrf=None).status_code == 403
    assert alice.post(f"/{model}/settings/delete", {"confirm": model}, csrf="nope").status_code == 403
    assert alice.get(f"/{model}").status_code == 200


def test_delete_needs_the_name_typed(hub: HubServer, model: str, alice: Web, anon: Web, hub_services: Any) -> None:
    wrong = alice.post(f"/{model}/settings/delete", {"confirm": "something else"})
    assert wrong.status_code == 400 and "type its full name" in wrong.text
    assert anon.get(f"/{model}").status_code == 200
    deleted = alice.post(f"/{model}/settings/delete", {"confirm": model})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/alice"
    assert anon.get(f"/{model}").status_code == 404
    assert ("repo.delete", "alice") in audit_actions(hub_services, model)
