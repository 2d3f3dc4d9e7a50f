"""Discussions and pull requests in the UI: open, comment, close, reopen, review the diff, merge."""

from __future__ import annotations

import re
from typing import Any

from tests.hubserver import HubServer
from tests.web.conftest import Web, audit_actions


def _open(web: Web, model: str, title: str, description: str = "") -> int:
    response = web.post(f"/{model}/discussions/new", {"title": title, "description": description})
    assert response.status_code == 303, response.text[-300:]
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_discussion_lifecycle(hub: HubServer, model: str, alice: Web, bob: Web, anon: Web,
                              hub_services: Any) -> None:
    assert anon.get(f"/{model}/discussions/new").status_code == 303  # sign in first
    num = _open(bob, model, "Which template?", "Is it **ChatML**? <script>alert(1)</script>")
    page = anon.get(f"/{model}/discussions/{num}")
    assert page.status_code == 200
    assert "Which template?" in page.text and "<strong>ChatML</strong>" in page.text
    assert "<script>alert" not in page.text
    assert "Sign in</a> to comment" in page.text
    listing = anon.get(f"/{model}/discussions")
    assert "Which template?" in listing.text
    comment = alice.post(f"/{model}/discussions/{num}/comment", {"comment": "Yes, see [docs](https://x.org)"})
    assert comment.status_code == 303 and "#event-" in comment.headers["location"]
    assert 'href="https://x.org"' in anon.get(f"/{model}/discussions/{num}").text
    closed = bob.post(f"/{model}/discussions/{num}/status", {"status": "closed"})
    assert closed.status_code == 303
    assert "Which template?" not in anon.get(f"/{model}/discussions").text  # open ones by default
    assert "Which template?" in anon.get(f"/{model}/discussions?status=closed").text
    assert "closed this" in anon.get(f"/{model}/discussions/{num}").text
    assert alice.post(f"/{model}/discussions/{num}/status", {"status": "open"}).status_code == 303
    assert "reopened this" in anon.get(f"/{model}/discussions/{num}").text
    actions = [a for a, _ in audit_actions(hub_services, f"{model}#{num}")]
    assert actions == ["discussion.create", "discussion.comment", "discussion.status", "discussion.status"]


def test_only_author_or_writers_change_status(hub: HubServer, model: str, alice: Web, bob: Web,
                                              new_user: Any) -> None:
    num = _open(alice, model, "Alice's question")
    carol = Web(str(bob.http.base_url))
    try:
        assert carol.login(new_user()).status_code == 303
        refused = carol.post(f"/{model}/discussions/{num}/status", {"status": "closed"})
        assert refused.status_code == 403
        assert "Close discussion" not in carol.get(f"/{model}/discussions/{num}").text
    finally:
        carol.close()


def test_discussion_forms_need_csrf(model: str, bob: Web) -> None:
    assert bob.post(f"/{model}/discussions/new", {"title": "x"}, csrf=None).status_code == 403
    num = _open(bob, model, "A title")
    assert bob.post(f"/{model}/discussions/{num}/comment", {"comment": "hi"}, csrf="wrong").status_code == 403
    assert bob.post(f"/{model}/discussions/{num}/comment", {"comment": "hi"}, csrf=None).status_code == 403


def test_htmx_comment_returns_the_fragment(model: str, bob: Web) -> None:
    num = _open(bob, model, "Inline comments")
    response = bob.post(f"/{model}/discussions/{num}/comment", {"comment": "fast *reply*"},
                        headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<em>reply</em>" in response.text and 'hx-swap-oob="true"' in response.text
    assert "<html" not in response.text


def test_pull_request_review_and_merge(hub: HubServer, model: str, alice: Web, bob: Web,
                                       hub_services: Any) -> None:
    from huggingface_hub import CommitOperationAdd

    pr = hub.api("bob").create_commit(model, [CommitOperationAdd("config.json", b'{"hidden_size": 640}\n')],
                                      commit_message="Wider model", create_pr=True)
    num = int(pr.pr_num)
    page = bob.get(f"/{model}/discussions/{num}")
    assert page.status_code == 200
    assert f"refs/pr/{num}" in page.text and "Wider model" in page.text
    assert "Merge pull request" not in page.text and "Only the repo's writers can merge" in page.text
    files = bob.get(f"/{model}/discussions/{num}?tab=files")
    assert "config.json" in files.text and "640" in files.text and "576" in files.text
    refused = bob.post(f"/{model}/discussions/{num}/merge", {})
    assert refused.status_code == 403
    assert "Merge pull request" in alice.get(f"/{model}/discussions/{num}").text
    merged = alice.post(f"/{model}/discussions/{num}/merge", {"comment": "Thanks!"})
    assert merged.status_code == 303
    after = alice.get(f"/{model}/discussions/{num}")
    assert "Merged into" in after.text and "merged this pull request" in after.text
    log = alice.get(f"/{model}/commits/main").text
    assert "Wider model" in log
    assert "640" in alice.get(f"/{model}/blob/main/config.json").text
    sha = re.search(rf'/{model}/commit/([0-9a-f]{{40}})', after.text.split("Merged into")[1])
    assert sha is not None
    assert ("pr.merge", "alice") in audit_actions(hub_services, f"{model}#{num}")
    diff = alice.get(f"/{model}/discussions/{num}?tab=files").text
    assert "640" in diff  # a merged PR still shows what it changed
