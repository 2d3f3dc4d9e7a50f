"""A fine-tune from the browser, in real headless Chromium: fill the form on a model's page, watch the
job page follow the run without reloading (htmx), see the loss curve, open the published model.

The job runs in the worker inside the `hub` server (`commons serve`). Screenshot:
`test-artifacts/screenshots/job.png` (copied to docs/screenshots/ for the README).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.hubserver import HubServer
from tests.web.conftest import DESKTOP, PASSWORD, PHONE
from tests.web.test_jobs_pages import STEPS, upload_tiny_inputs


def test_fine_tune_from_the_model_page(browser: Any, hub: HubServer, passwords: None, screenshots: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from playwright.sync_api import expect

    inputs = upload_tiny_inputs(hub, "commons-web-jobs-browser-")
    context = browser.new_context(viewport=DESKTOP, base_url=hub.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto("/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{hub.url}/")

    # From the model's card page to the form.
    page.goto(f"/{inputs.base}")
    page.get_by_role("link", name="Fine-tune this model").click()
    expect(page).to_have_url(f"{hub.url}/{inputs.base}/finetune")
    page.get_by_label(re.compile("^Dataset")).fill(inputs.dataset)
    page.get_by_label(re.compile("^Repo name")).fill(f"browser-lora-{inputs.suffix}")
    page.get_by_role("radio", name=re.compile("^Chat")).check()
    page.get_by_label(re.compile("^Max steps")).fill(str(STEPS))
    page.get_by_label(re.compile("^Learning rate")).fill("0.05")
    page.locator("summary", has_text="More settings").click()
    page.get_by_label(re.compile("^Batch size")).fill("8")
    page.get_by_label(re.compile("^Max sequence length")).fill("32")
    page.get_by_label(re.compile("^Eval split")).fill("test")
    page.get_by_label(re.compile("^Target modules")).fill("q_proj, k_proj, v_proj, o_proj")
    page.get_by_role("button", name="Start fine-tune").click()

    # The job page follows the run by itself: a marker set now survives only if the page never reloads.
    expect(page).to_have_url(re.compile(rf"{re.escape(hub.url)}/jobs/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("#job-live .job-state")).to_have_text(re.compile("queued|running"))
    expect(page.locator("#job-live progress")).to_be_visible(timeout=120_000)  # training has begun
    expect(page.locator("#job-live .job-state")).to_have_text("succeeded", timeout=150_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the job page reloaded instead of updating in place"

    expect(page.locator("#job-live progress")).to_have_attribute("value", str(STEPS))
    expect(page.locator(".job-stats")).to_contain_text("Loss")
    line = page.locator("svg.line-chart path.series-line")
    expect(line).to_have_count(1)
    assert len(re.findall(r"[ML]", line.get_attribute("d") or "")) == STEPS
    expect(page.locator("svg.line-chart .series-points circle")).to_have_count(4)  # before/after, two splits
    expect(page.locator("#job-log")).to_contain_text("state succeeded")  # appended while watching
    expect(page.locator("#job-log")).to_contain_text("published alice/browser-lora-")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    page.screenshot(path=screenshots / "job.png", full_page=True)

    # The list shows it; the published model opens.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.locator(f'a[href="/jobs/{job_id}"]').first).to_be_visible()
    page.goto(f"/jobs/{job_id}")
    page.locator(".job-outcome a").first.click()
    expect(page).to_have_url(f"{hub.url}/alice/browser-lora-{inputs.suffix}")
    expect(page.locator(".meta-panel")).to_contain_text(inputs.base)  # base_model in the card's metadata
    expect(page.locator(".card-body")).to_contain_text(inputs.dataset)

    # At phone width nothing scrolls sideways (the chart scales, the log wraps).
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, base_url=hub.url,
                                storage_state=context.storage_state())
    small = phone.new_page()
    small.goto(f"/jobs/{job_id}")
    expect(small.locator("#job-live .job-state")).to_have_text("succeeded")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the job page scrolls sideways at phone width ({width}px)"
    small.screenshot(path=screenshots / "job-phone.png", full_page=True)
    phone.close()
    context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
