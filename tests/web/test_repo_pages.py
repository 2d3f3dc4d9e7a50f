"""Repo pages: the card and its metadata, the file browser, history and diffs, access rules, gating."""

from __future__ import annotations

import re
from typing import Any

from tests.hubserver import HubServer
from tests.web.conftest import Web, audit_actions


def test_model_page_renders_card_and_metadata(anon: Web, model: str) -> None:
    page = anon.get(f"/{model}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Tiny chat model</h1>" in html and "<strong>small</strong>" in html
    assert f'href="/{model}/blob/main/config.json"' in html  # relative card links point at the file page
    for fact in ("apache-2.0", "135M", "text-generation", "transformers", "demo/base-model", "demo/instructions",
                 "HellaSwag", "normalized accuracy", "42.13"):
        assert fact in html, fact
    assert '<span class="k">print</span>' in html or 'class="nb">print' in html  # highlighted code block
    assert "Model card" in html and "Files" in html and f'href="/{model}/discussions"' in html
    assert f'href="/{model}/settings"' not in html  # settings only for admins
    assert "<script" not in html  # pages that read need no JavaScript


def test_card_cannot_inject_script(hub: HubServer, anon: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id)
    evil = ("---\nlicense: mit\nextra_gated_prompt: '<script>alert(2)</script>'\n---\n# Hi\n"
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n\n"
            "[y](JaVaScRiPt:alert(1)) <a href=\"javascript:alert(1)\">z</a> <iframe src=\"https://evil\"></iframe>"
            "<div onclick=\"alert(1)\" style=\"position:fixed\">d</div>\n")
    api.upload_file(path_or_fileobj=evil.encode(), path_in_repo="README.md", repo_id=repo_id)
    html = anon.get(f"/{repo_id}").text  # the rendered card
    lowered = html.lower()
    assert "<h1>hi</h1>" in lowered  # the card did render
    assert "<script" not in lowered
    assert "onerror" not in lowered and "onclick" not in lowered
    assert "javascript:" not in lowered
    assert "<iframe" not in lowered and 'style="' not in lowered
    source = anon.get(f"/{repo_id}/blob/main/README.md").text  # the source view shows the text, escaped
    assert "<script" not in source.lower() and "&lt;script&gt;" in source


def test_private_repo_is_404_for_others(hub: HubServer, anon: Web, alice: Web, bob: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    hub.api("alice").create_repo(repo_id, private=True)
    hub.api("alice").upload_file(path_or_fileobj=b"secret\n", path_in_repo="notes.txt", repo_id=repo_id)
    paths = ["", "/tree/main", "/blob/main/notes.txt", "/commits/main", "/discussions", "/settings", "/refs"]
    for suffix in paths:
        assert alice.get(f"/{repo_id}{suffix}").status_code == 200, suffix
        for who in (bob, anon):
            page = who.get(f"/{repo_id}{suffix}")
            assert page.status_code == 404, (suffix, page.status_code)
            assert "secret" not in page.text and "Repository not found" in page.text


def test_file_browser_at_branch_tag_and_commit(hub: HubServer, anon: Web, model: str) -> None:
    api = hub.api("alice")
    api.create_tag(model, tag="v1")
    api.create_branch(model, branch="dev")
    api.upload_file(path_or_fileobj=b"new\n", path_in_repo="src/added.py", repo_id=model, revision="dev")
    sha = api.list_repo_commits(model)[0].commit_id
    root = anon.get(f"/{model}/tree/main")
    assert root.status_code == 200
    assert f'href="/{model}/tree/main/src"' in root.text and f'href="/{model}/blob/main/config.json"' in root.text
    assert "Add the model" in root.text  # last commit per entry
    src = anon.get(f"/{model}/tree/main/src")
    assert "run.py" in src.text and "added.py" not in src.text
    assert "added.py" in anon.get(f"/{model}/tree/dev/src").text
    assert "run.py" in anon.get(f"/{model}/tree/v1/src").text
    assert "run.py" in anon.get(f"/{model}/tree/{sha}/src").text
    assert anon.get(f"/{model}/tree/main/nothing").status_code == 404
    assert anon.get(f"/{model}/tree/no-such-branch").status_code == 404
    as_file = anon.get(f"/{model}/tree/main/config.json")
    assert as_file.status_code == 303 and as_file.headers["location"] == f"/{model}/blob/main/config.json"


def test_blob_is_highlighted(anon: Web, model: str) -> None:
    page = anon.get(f"/{model}/blob/main/src/run.py")
    assert page.status_code == 200
    assert '<span class="k">def</span>' in page.text and "Python" in page.text
    assert f'href="/{model}/resolve/main/src/run.py"' in page.text
    assert 'id="L-2"' in page.text  # line anchors
    json_page = anon.get(f"/{model}/blob/main/config.json")
    assert "JSON" in json_page.text and "hidden_size" in json_page.text


def test_large_and_binary_files_are_not_inlined(hub: HubServer, anon: Web, model: str) -> None:
    api = hub.api("alice")
    api.upload_file(path_or_fileobj=b"\x00\x01binary" * 10, path_in_repo="weights.bin", repo_id=model)
    page = anon.get(f"/{model}/blob/main/weights.bin")
    assert page.status_code == 200
    assert "binary" in page.text.lower() or "LFS" in page.text
    assert "\x00" not in page.text


def test_history_and_commit_diff(hub: HubServer, anon: Web, model: str) -> None:
    api = hub.api("alice")
    api.upload_file(path_or_fileobj=b"def main() -> int:\n    return 43\n", path_in_repo="src/run.py",
                    repo_id=model, commit_message="Answer 43")
    log = anon.get(f"/{model}/commits/main")
    assert log.status_code == 200
    assert "Answer 43" in log.text and "Add the model" in log.text and "initial commit" in log.text
    sha = re.search(rf'href="/{model}/commit/([0-9a-f]{{40}})"', log.text).group(1)  # type: ignore[union-attr]
    commit = anon.get(f"/{model}/commit/{sha}")
    assert commit.status_code == 200
    assert "src/run.py" in commit.text and "return 43" in commit.text and "return 42" in commit.text
    assert 'class="add"' in commit.text and 'class="del"' in commit.text
    assert anon.get(f"/{model}/commit/{sha[:10]}").status_code == 200  # short shas resolve
    assert anon.get(f"/{model}/commit/{'0' * 40}").status_code == 404
    assert anon.get(f"/{model}/commit/not-a-sha").status_code == 404
    first = re.findall(rf'href="/{model}/commit/([0-9a-f]{{40}})"', log.text)[-1]
    assert ".gitattributes" in anon.get(f"/{model}/commit/{first}").text  # the root commit's diff


def test_refs_page_and_pr_refs(hub: HubServer, anon: Web, model: str) -> None:
    from huggingface_hub import CommitOperationAdd

    api = hub.api("alice")
    api.create_tag(model, tag="v2")
    pr = hub.api("bob").create_commit(model, [CommitOperationAdd("pr.txt", b"from bob\n")],
                                      commit_message="PR file", create_pr=True)
    num = int(pr.pr_num)
    refs = anon.get(f"/{model}/refs")
    assert refs.status_code == 200 and "v2" in refs.text and f"refs/pr/{num}" in refs.text
    encoded = anon.get(f"/{model}/tree/refs%2Fpr%2F{num}")
    assert encoded.status_code == 200 and "pr.txt" in encoded.text
    plain = anon.get(f"/{model}/blob/refs/pr/{num}/pr.txt")  # unencoded, as people type it
    assert plain.status_code == 200 and "from bob" in plain.text
    assert anon.get(f"/{model}/commits/refs%2Fpr%2F{num}").status_code == 200


def test_dataset_pages(hub: HubServer, anon: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"---\nlicense: cc-by-4.0\ntask_categories: [text-generation]\n---\n# Data\n",
                    path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"q,a\n1+1,2\n", path_in_repo="data/train.csv", repo_id=repo_id,
                    repo_type="dataset")
    page = anon.get(f"/datasets/{repo_id}")
    assert page.status_code == 200 and "Dataset card" in page.text and "load_dataset" in page.text
    assert "cc-by-4.0" in page.text
    assert "train.csv" in anon.get(f"/datasets/{repo_id}/tree/main/data").text
    assert "1+1,2" in anon.get(f"/datasets/{repo_id}/blob/main/data/train.csv").text
    assert anon.get(f"/{repo_id}").status_code == 404  # not a model


def test_gated_repo_asks_for_access(hub: HubServer, anon: Web, bob: Web, alice: Web, repo_name: str,
                                    hub_services: Any) -> None:
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"---\nlicense: other\nextra_gated_fields:\n  Company: text\n"
                    b"  I agree: checkbox\n---\n# Gated card body\n", path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"weights\n", path_in_repo="model.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    card = bob.get(f"/{repo_id}")
    assert card.status_code == 200
    assert "Gated card body" not in card.text  # the card is a file: it needs access too, as in the API
    assert "Agree and request access" in card.text and "Company" in card.text
    assert "model.txt" in bob.get(f"/{repo_id}/tree/main").text  # listing files is open, as in the API
    blob = bob.get(f"/{repo_id}/blob/main/model.txt")
    assert blob.status_code == 403 and "request access" in blob.text.lower()
    assert "Sign in to request access" in anon.get(f"/{repo_id}/blob/main/model.txt").text
    assert "weights" in alice.get(f"/{repo_id}/blob/main/model.txt").text
    missing = bob.post(f"/{repo_id}/ask-access", {"field_0": "ACME"})
    assert missing.status_code == 400  # the checkbox is required
    asked = bob.post(f"/{repo_id}/ask-access", {"field_0": "ACME", "field_1": "yes"})
    assert asked.status_code == 303
    assert "waiting for the authors" in bob.get(f"/{repo_id}").text
    assert ("gate.ask", "bob") in audit_actions(hub_services, repo_id)
    settings = alice.get(f"/{repo_id}/settings")
    assert "ACME" in settings.text and "Pending" in settings.text
    accepted = alice.post(f"/{repo_id}/settings/access", {"user": "bob", "status": "accepted"})
    assert accepted.status_code == 303
    assert "weights" in bob.get(f"/{repo_id}/blob/main/model.txt").text
    assert "Gated card body" in bob.get(f"/{repo_id}").text
    assert bob.post(f"/{repo_id}/ask-access", {"field_0": "x", "field_1": "yes"}, csrf="bad").status_code == 403


def test_auto_gated_repo_grants_at_once(hub: HubServer, bob: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    api = hub.api("alice")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"data\n", path_in_repo="file.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="auto")
    assert bob.get(f"/{repo_id}/blob/main/file.txt").status_code == 403
    assert bob.post(f"/{repo_id}/ask-access", {}).status_code == 303
    assert bob.get(f"/{repo_id}/blob/main/file.txt").status_code == 200


def test_repo_without_card(hub: HubServer, anon: Web, alice: Web, repo_name: str) -> None:
    repo_id = f"alice/{repo_name}"
    hub.api("alice").create_repo(repo_id)
    page = anon.get(f"/{repo_id}")
    assert page.status_code == 200 and "No card yet" in page.text and "has no metadata yet" in page.text
    assert "Suggest one in a discussion" in alice.get(f"/{repo_id}").text


def test_lfs_file_page(hub: HubServer, anon: Web, model: str) -> None:
    hub.api("alice").upload_file(path_or_fileobj=b"\0" * 2048, path_in_repo="model.safetensors", repo_id=model)
    page = anon.get(f"/{model}/blob/main/model.safetensors")
    assert page.status_code == 200
    assert "stored with Git LFS" in page.text and "2,048 bytes" in page.text
    assert f'href="/{model}/resolve/main/model.safetensors"' in page.text

