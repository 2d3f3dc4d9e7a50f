"""End to end in real headless Chromium: sign in, read a model, browse files, discuss, merge a PR.

Screenshots go to `test-artifacts/screenshots/`. Needs Debian's chromium (`/usr/bin/chromium`, or
`COMMONS_CHROMIUM`) and the `playwright` package; skipped without them (no browser is downloaded).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.hubserver import HubServer
from tests.web.conftest import DESKTOP, PASSWORD, PHONE


def test_sign_in_read_discuss_and_merge(browser: Any, hub: HubServer, passwords: None, model: str,
                                        screenshots: Path) -> None:
    from huggingface_hub import CommitOperationAdd
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP, base_url=hub.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    # Sign in.
    page.goto("/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{hub.url}/")
    expect(page.get_by_label("Account menu for alice")).to_be_visible()
    page.screenshot(path=screenshots / "home.png", full_page=True)

    # Find the model through search, and read its card's metadata.
    name = model.split("/")[1]
    page.get_by_role("searchbox", name="Search models").first.fill(name)
    page.keyboard.press("Enter")
    page.locator(f'a.repo-item-link[href="/{model}"]').click()
    expect(page).to_have_url(f"{hub.url}/{model}")
    panel = page.locator(".meta-panel")
    expect(panel).to_contain_text("apache-2.0")
    expect(panel).to_contain_text("135M")
    expect(panel).to_contain_text("demo/base-model")
    expect(panel).to_contain_text("HellaSwag")
    expect(page.locator(".card-body h1")).to_have_text("Tiny chat model")
    page.screenshot(path=screenshots / "model.png", full_page=True)

    # Browse files down to a highlighted source file.
    page.get_by_role("link", name=re.compile("Files")).first.click()
    page.get_by_role("link", name="src").click()
    page.get_by_role("link", name="run.py").click()
    expect(page.locator(".source .k").first).to_have_text("def")
    page.screenshot(path=screenshots / "file.png")

    # Open a discussion and comment on it (the comment is posted in place by htmx).
    page.get_by_role("link", name=re.compile("Discussions")).first.click()
    page.get_by_role("link", name="New discussion").click()
    page.get_by_label("Title").fill("Please document the chat template")
    page.get_by_label("Description").fill("Which **template** does it use?")
    page.get_by_role("button", name="Open discussion").click()
    expect(page.locator(".discussion-head h2")).to_contain_text("Please document the chat template")
    page.get_by_role("textbox", name="Comment").fill("It is *ChatML*, I will add it.")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#timeline em")).to_have_text("ChatML")
    expect(page.get_by_role("textbox", name="Comment")).to_have_value("")
    page.screenshot(path=screenshots / "discussion.png", full_page=True)

    # bob opens a pull request from the client; alice reviews and merges it in the UI.
    pr = hub.api("bob").create_commit(
        model, [CommitOperationAdd("config.json", b'{"hidden_size": 640, "num_hidden_layers": 30}\n')],
        commit_message="Widen the hidden size", commit_description="640 works better.", create_pr=True)
    page.goto(f"/{model}/discussions/{pr.pr_num}?tab=files")
    expect(page.locator(".diff-file")).to_contain_text("640")
    page.screenshot(path=screenshots / "pr-diff.png", full_page=True)
    page.get_by_role("link", name="Conversation").click()
    expect(page.get_by_role("button", name="Merge pull request")).to_be_visible()
    page.screenshot(path=screenshots / "pull-request.png", full_page=True)
    page.get_by_role("button", name="Merge pull request").click()
    expect(page.locator(".merge-box.merged")).to_contain_text("Merged into")
    page.screenshot(path=screenshots / "pull-request-merged.png", full_page=True)

    # The merged commit is in the history.
    page.get_by_role("link", name=re.compile("Commits")).first.click()
    expect(page.locator(".commit-title").first).to_have_text("Widen the hidden size")
    page.screenshot(path=screenshots / "commits.png")

    # The model page at phone width.
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, base_url=hub.url)
    small = phone.new_page()
    small.goto(f"/{model}")
    expect(small.locator(".meta-panel")).to_contain_text("apache-2.0")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width}px)"
    small.screenshot(path=screenshots / "model-phone.png")
    phone.close()
    context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
