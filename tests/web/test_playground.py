"""The Playground tab: how to start a server when none runs, then a chat that streams from `serve-model`.

Needs Debian's chromium and playwright (skipped without them, as tests/web/test_browser.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hubserver import HubServer
from tests.serving.conftest import ModelServer, tiny_chat_model
from tests.web.conftest import PASSWORD

REPO = "alice/playground-tiny"
# Counts the changes the chat log goes through, to tell a stream from one late write.
OBSERVE = """() => {
  window.__updates = 0;
  new MutationObserver(() => { window.__updates += 1; })
    .observe(document.getElementById('chat-log'), {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def tiny_repo(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("torch")
    folder = tiny_chat_model(tmp_path_factory.mktemp("playground") / "tiny")
    api = hub.api("alice")
    api.create_repo(REPO, private=True)
    api.upload_folder(repo_id=REPO, folder_path=folder, commit_message="tiny chat model")
    return REPO


def test_playground_streams_a_chat(browser: Any, hub: HubServer, passwords: None, tiny_repo: str,
                                   screenshots: Path) -> None:
    openai = pytest.importorskip("openai")
    from playwright.sync_api import expect

    context = browser.new_context(base_url=hub.url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/")

    page.goto(f"/{tiny_repo}/playground")
    expect(page.get_by_role("heading", name=f"No model server runs for {tiny_repo}")).to_be_visible()
    expect(page.locator("pre code")).to_contain_text(f"commons serve-model {tiny_repo}@")

    env = {"COMMONS_DATABASE_URL": hub.database_url} if hub.database_url else {}
    server = ModelServer(hub.home, tiny_repo, ("--engine", "transformers"), env).start()
    try:
        page.goto(f"/{tiny_repo}/playground")
        expect(page.get_by_text("Served by transformers")).to_be_visible()
        page.evaluate(OBSERVE)
        page.fill("textarea[name=message]", "say hello world")
        page.fill("input[name=max_tokens]", "12")
        page.click("#chat-form button[type=submit]")
        reply = page.locator(".chat-assistant .chat-text")
        expect(page.locator("#chat-usage")).to_contain_text("completion tokens", timeout=60_000)
        shown = reply.inner_text()
        updates = page.evaluate("window.__updates")
        page.screenshot(path=str(screenshots / "playground.png"), full_page=True)

        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=hub.tokens["alice-read"], max_retries=0)
        expected = api.chat.completions.create(model=tiny_repo, max_tokens=12, temperature=0,
                                               messages=[{"role": "user", "content": "say hello world"}])
    finally:
        server.stop()
        context.close()
    assert shown and shown == expected.choices[0].message.content
    assert updates > 3  # the user's bubble, the empty reply, then the reply growing token by token


def test_serve_button_starts_and_stops_a_server(hub: HubServer, alice: Any, bob: Any,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """A writer starts `serve-model` from the Playground tab, chats through the hub, and stops it; a second
    click does not start a second server; someone who may not write cannot start one."""
    import time

    pytest.importorskip("llama_cpp")
    from commons.serving.registry import running
    from tests.ml.tiny_bpe import tiny_bpe_llama

    repo = "alice/playground-served"
    folder = tiny_bpe_llama(tmp_path_factory.mktemp("served") / "model")
    api = hub.api("alice")
    api.create_repo(repo, private=True)
    api.upload_folder(repo_id=repo, folder_path=folder, commit_message="tiny BPE model")
    page = f"/{repo}/playground"
    assert f"Serve {repo} at" in alice.get(page).text
    assert bob.post(f"{page}/serve", csrf=bob.csrf()).status_code == 404  # bob cannot even see the repo

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            body = alice.get(page).text
            if text in body:
                return body
            time.sleep(0.5)
        raise AssertionError(f"{text!r} never appeared on {page}: {body[-2000:]}")

    assert alice.post(f"{page}/serve").status_code == 303
    try:
        wait_for("Served by <code>llama.cpp</code>")
        assert alice.post(f"{page}/serve").status_code == 303  # a second click
        assert len(running(hub.home, repo)) == 1
        reply = alice.http.post(f"{page}/chat", json={"messages": [{"role": "user", "content": "hello"}],
                                                      "max_tokens": 4}, headers={"X-CSRF-Token": alice.csrf()})
        assert reply.status_code == 200 and reply.text.rstrip().endswith("data: [DONE]")
    finally:
        assert alice.post(f"{page}/stop").status_code == 303
    wait_for(f"No model server runs for {repo}")
    assert running(hub.home, repo) == []
