"""Home, search with filters and sorting, user and organisation pages, static files, what stays the API's."""

from __future__ import annotations

from typing import Any

import httpx

from tests.hubserver import HubServer
from tests.web.conftest import Web


def test_home_lists_public_repos_not_private_ones(hub: HubServer, anon: Web, model: str, repo_name: str) -> None:
    hub.api("alice").create_repo(f"alice/{repo_name}-private", private=True)
    page = anon.get("/")
    assert page.status_code == 200
    assert "Recently updated models" in page.text and "Most liked datasets" in page.text
    assert listed(page, f"/{model}")
    assert f"{repo_name}-private" not in page.text


def test_private_repos_show_to_their_owner(hub: HubServer, alice: Web, bob: Web, repo_name: str) -> None:
    hub.api("alice").create_repo(f"alice/{repo_name}-mine", private=True)
    assert listed(alice.get("/models?sort=lastModified"), f"/alice/{repo_name}-mine")
    assert not listed(bob.get("/models?sort=lastModified"), f"/alice/{repo_name}-mine")


def listed(page: httpx.Response, url: str) -> bool:
    """Whether the results list links to the repo at `url`."""
    return f'class="repo-item-link" href="{url}"' in page.text


def test_search_filters_and_sorts(hub: HubServer, anon: Web, model: str, repo_name: str) -> None:
    from huggingface_hub import CommitOperationAdd

    other = f"bob/{repo_name}-other"
    api = hub.api("bob")
    api.create_repo(other)
    api.create_commit(other, [CommitOperationAdd(
        "README.md", b"---\nlicense: mit\nlibrary_name: diffusers\npipeline_tag: text-to-image\n---\n# x\n")],
        commit_message="card")
    mine, theirs = f"/{model}", f"/{other}"
    found = anon.get(f"/models?search={repo_name}")
    assert listed(found, mine) and listed(found, theirs)
    assert "text-to-image" in found.text and "diffusers" in found.text  # facet values with counts
    by_task = anon.get(f"/models?search={repo_name}&pipeline_tag=text-generation")
    assert listed(by_task, mine) and not listed(by_task, theirs)
    assert "Task: text-generation" in by_task.text  # the active filter, with a link that removes it
    for query in ("license=apache-2.0", "language=fr", "base_model=demo/base-model", "library=transformers",
                  "dataset=demo/instructions"):
        page = anon.get(f"/models?search={repo_name}&{query}")
        assert listed(page, mine) and not listed(page, theirs), query
    by_license = anon.get(f"/models?search={repo_name}&license=mit")
    assert listed(by_license, theirs) and not listed(by_license, mine)
    for sort in ("likes", "downloads", "lastModified", "createdAt", "nonsense"):
        assert anon.get(f"/models?sort={sort}").status_code == 200
    newest = anon.get(f"/models?search={repo_name}&sort=createdAt").text
    assert newest.index(f'href="{theirs}"') < newest.index(f'href="{mine}"')


def test_dataset_search(hub: HubServer, anon: Web, repo_name: str) -> None:
    from huggingface_hub import CommitOperationAdd

    api = hub.api("alice")
    api.create_repo(f"alice/{repo_name}", repo_type="dataset")
    api.create_commit(f"alice/{repo_name}", [CommitOperationAdd(
        "README.md", b"---\nlicense: cc-by-4.0\ntask_categories: [question-answering]\n---\n# data\n")],
        commit_message="card", repo_type="dataset")
    url = f"/datasets/alice/{repo_name}"
    assert listed(anon.get(f"/datasets?search={repo_name}&task_categories=question-answering"), url)
    assert not listed(anon.get(f"/datasets?search={repo_name}&task_categories=translation"), url)
    assert not listed(anon.get(f"/models?search={repo_name}"), url)


def test_user_page(anon: Web, alice: Web, model: str) -> None:
    page = anon.get("/alice")
    assert page.status_code == 200 and listed(page, f"/{model}")
    assert "Organisations" not in page.text  # memberships show to the user only
    assert "Organisations" in alice.get("/alice").text


def test_org_page_shows_members_to_members(hub: HubServer, alice: Web, bob: Web, hub_services: Any,
                                           repo_name: str) -> None:
    org = f"org-{repo_name[2:]}"
    made = httpx.post(f"{hub.url}/api/commons/orgs", json={"name": org},
                      headers={"authorization": f"Bearer {hub.tokens['alice']}"})
    assert made.status_code == 200
    hub.api("alice").create_repo(f"{org}/shared")
    mine = alice.get(f"/{org}")
    assert mine.status_code == 200 and "Organisation" in mine.text and "Members" in mine.text
    theirs = bob.get(f"/{org}")
    assert theirs.status_code == 200 and listed(theirs, f"/{org}/shared") and "Members" not in theirs.text


def test_unknown_names_are_404_pages(anon: Web) -> None:
    page = anon.get("/nobody-here-at-all")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


def test_api_paths_stay_json(anon: Web) -> None:
    for path in ("/api/nothing", "/api/nothing/here", "/api/spaces"):
        response = anon.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json"), path


def test_static_files(anon: Web) -> None:
    css = anon.get("/static/commons.css?v=1")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert ".source" in anon.get("/static/pygments.css").text
    assert "htmx" in anon.get("/static/htmx.min.js").text[:200]
    for bad in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/nothing.css"):
        assert anon.get(bad).status_code == 404, bad
