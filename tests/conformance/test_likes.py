"""Likes with the real huggingface_hub client: unlike, list_liked_repos, list_repo_likers, sort=likes.

huggingface_hub 1.x dropped `HfApi.like` ("it is not possible to like a repository from a
script" on huggingface.co); the request it sent, `POST /api/{type}s/{id}/like` with the client's
own headers, is made here with the client's session and `build_hf_headers`.
"""

from __future__ import annotations

import uuid

import pytest

from tests.hubserver import HubServer


def like(hub: HubServer, user: str | None, repo_id: str, repo_type: str = "model") -> int:
    from huggingface_hub.utils import build_hf_headers, get_session

    token = hub.tokens[user] if user else False
    response = get_session().post(f"{hub.url}/api/{repo_type}s/{repo_id}/like",
                                  headers=build_hf_headers(token=token))
    return response.status_code


def test_like_unlike_and_the_lists(hub: HubServer) -> None:
    alice, bob = hub.api("alice"), hub.api("bob")
    tag = uuid.uuid4().hex[:6]
    model, data = f"alice/liked-{tag}", f"alice/liked-data-{tag}"
    alice.create_repo(model)
    alice.create_repo(data, repo_type="dataset")

    assert like(hub, "bob", model) == 200
    assert like(hub, "bob", model) == 200  # twice is still one like
    assert like(hub, "bob", data, "dataset") == 200
    assert like(hub, "alice", model) == 200
    assert alice.model_info(model).likes == 2
    assert alice.dataset_info(data).likes == 1

    mine = bob.list_liked_repos()
    assert (mine.user, model in mine.models, data in mine.datasets) == ("bob", True, True)
    assert sorted(u.username for u in alice.list_repo_likers(model)) == ["alice", "bob"]

    bob.unlike(model)
    bob.unlike(model)  # unliking what is not liked changes nothing
    assert alice.model_info(model).likes == 1
    assert model not in bob.list_liked_repos().models
    assert [u.username for u in alice.list_repo_likers(model)] == ["alice"]


def test_anonymous_and_read_tokens_cannot_like(hub: HubServer) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = f"alice/nolike-{uuid.uuid4().hex[:6]}"
    hub.api("alice").create_repo(repo_id)
    assert like(hub, None, repo_id) == 401
    assert like(hub, "bob-read", repo_id) == 403
    with pytest.raises(HfHubHTTPError):
        hub.api("bob-read").unlike(repo_id)
    assert hub.api("alice").model_info(repo_id).likes == 0


def test_private_likes_are_listed_only_to_those_who_see_the_repo(hub: HubServer) -> None:
    secret = f"alice/private-liked-{uuid.uuid4().hex[:6]}"
    hub.api("alice").create_repo(secret, private=True)
    assert like(hub, "alice", secret) == 200
    assert secret in hub.api("alice").list_liked_repos("alice").models
    assert secret not in hub.api("bob").list_liked_repos("alice").models
    assert secret not in hub.api(None).list_liked_repos("alice").models
    assert like(hub, "bob", secret) == 404


def test_sort_by_likes(hub: HubServer) -> None:
    author_tag = uuid.uuid4().hex[:6]
    alice = hub.api("alice")
    names = [f"alice/sort-{author_tag}-{i}" for i in range(3)]
    for name in names:
        alice.create_repo(name)
    for user in ("alice", "bob", "root"):
        like(hub, user, names[1])
    like(hub, "bob", names[2])
    found = [m.id for m in alice.list_models(search=f"sort-{author_tag}", sort="likes")]
    assert found == [names[1], names[2], names[0]]
    assert [m.likes for m in alice.list_models(search=f"sort-{author_tag}", sort="likes")] == [3, 1, 0]
