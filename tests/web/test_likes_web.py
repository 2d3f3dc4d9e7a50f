"""The like button: a CSRF-checked form that works without JavaScript; the home page's most liked."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.hubserver import HubServer
from tests.web.conftest import Web


def test_like_button_toggles_and_counts(hub: HubServer, bob: Web, anon: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    hub.api("alice").create_repo(repo_id)
    page = bob.get(f"/{repo_id}").text
    assert 'action="/' + repo_id + '/like"' in page and 'aria-pressed="false"' in page

    refused = bob.post(f"/{repo_id}/like", {"action": "like"}, csrf=None)
    assert refused.status_code == 403
    assert hub.api("alice").model_info(repo_id).likes == 0

    done = bob.post(f"/{repo_id}/like", {"action": "like", "next": f"/{repo_id}/tree/main"})
    assert done.status_code == 303 and done.headers["location"] == f"/{repo_id}/tree/main"
    page = bob.get(f"/{repo_id}").text
    assert 'aria-pressed="true"' in page and re.search(r'class="like-count">1<', page)
    assert hub.api("alice").model_info(repo_id).likes == 1
    assert repo_id in hub.api("bob").list_liked_repos().models

    # Elsewhere than this repo's pages is not a place the button sends people back to.
    away = bob.post(f"/{repo_id}/like", {"action": "unlike", "next": "https://evil.example/"})
    assert away.headers["location"] == f"/{repo_id}"
    assert hub.api("alice").model_info(repo_id).likes == 0

    assert "like-form" not in anon.get(f"/{repo_id}").text
    assert anon.post(f"/{repo_id}/like", {"action": "like"}, csrf="forged").status_code in (401, 403)


def test_most_liked_on_the_home_page(hub: HubServer, bob: Web, anon: Web, repo_name: str,
                                    new_user: Callable[[], str]) -> None:
    repo_id = f"alice/{repo_name}-popular"
    hub.api("alice").create_repo(repo_id)
    assert bob.post(f"/{repo_id}/like", {"action": "like"}).status_code == 303
    for _ in range(3):  # more likes than any other test gives a repo, so it is at the top
        fan = Web(hub.url)
        assert fan.login(new_user()).status_code == 303
        assert fan.post(f"/{repo_id}/like", {"action": "like"}).status_code == 303
        fan.close()
    home = anon.get("/").text
    liked = home[home.index("Most liked models"):home.index("Recently updated models")]
    assert f'href="/{repo_id}"' in liked
    search = anon.get("/models", params={"sort": "likes"}).text
    assert f'href="/{repo_id}"' in search
