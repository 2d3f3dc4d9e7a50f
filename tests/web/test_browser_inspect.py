"""In real headless Chromium: inspect a safetensors file (tensor list, filter, paging) and page
through a Parquet dataset in the Viewer tab; like the model. Screenshots go to
`test-artifacts/screenshots/` (`inspector.png`, `dataset-viewer.png`)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

from tests.hubserver import HubServer
from tests.web.conftest import DESKTOP, PASSWORD, PHONE
from tests.web.test_inspect import safetensors_bytes

LAYERS = 30


HIDDEN, INTER, VOCAB, KV = 64, 160, 2048, 16  # SmolLM2-135M's layout (272 tensors), narrower: a 3 MB file


def llama_tensors(hidden: int = HIDDEN, inter: int = INTER, vocab: int = VOCAB, kv: int = KV
                  ) -> dict[str, tuple[str, list[int]]]:
    """The tensor layout of a small Llama, 272 tensors."""
    out: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [vocab, hidden])}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        out.update({
            f"{p}.input_layernorm.weight": ("BF16", [hidden]),
            f"{p}.post_attention_layernorm.weight": ("BF16", [hidden]),
            f"{p}.self_attn.q_proj.weight": ("BF16", [hidden, hidden]),
            f"{p}.self_attn.k_proj.weight": ("BF16", [kv, hidden]),
            f"{p}.self_attn.v_proj.weight": ("BF16", [kv, hidden]),
            f"{p}.self_attn.o_proj.weight": ("BF16", [hidden, hidden]),
            f"{p}.mlp.gate_proj.weight": ("BF16", [inter, hidden]),
            f"{p}.mlp.up_proj.weight": ("BF16", [inter, hidden]),
            f"{p}.mlp.down_proj.weight": ("BF16", [hidden, inter]),
        })
    out["model.norm.weight"] = ("F32", [hidden])
    return out


def instructions_parquet(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ops = ["+", "-", "*"]
    prompts = [f"What is {i % 97} {ops[i % 3]} {i % 13}?" for i in range(rows)]
    answers = [str(eval(f"{i % 97} {ops[i % 3]} {i % 13}")) for i in range(rows)]
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "prompt": prompts, "answer": answers,
                      "meta": [{"difficulty": i % 3, "source": "generated"} for i in range(rows)]})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=1000)
    return out.getvalue()


def test_inspect_weights_and_page_through_a_dataset(browser: Any, hub: HubServer, passwords: None,
                                                    repo_name: str, screenshots: Path) -> None:
    from huggingface_hub import CommitOperationAdd
    from playwright.sync_api import expect

    model, data = f"alice/{repo_name}-weights", f"alice/{repo_name}-data"
    api = hub.api("alice")
    api.create_repo(model)
    tensors = llama_tensors()
    params = sum(math.prod(shape) for _, shape in tensors.values())
    api.create_commit(model, [
        CommitOperationAdd("README.md", b"---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# Weights\n"),
        CommitOperationAdd("model.safetensors", safetensors_bytes(tensors, {"format": "pt"})),
    ], commit_message="Add weights")
    api.create_repo(data, repo_type="dataset")
    api.create_commit(data, [
        CommitOperationAdd("README.md", b"---\nlicense: mit\ntask_categories: [question-answering]\n---\n# Sums\n"),
        CommitOperationAdd("data/train-00000-of-00001.parquet", instructions_parquet(5000)),
        CommitOperationAdd("data/test-00000-of-00001.parquet", instructions_parquet(200)),
    ], commit_message="Add data", repo_type="dataset")

    context = browser.new_context(viewport=DESKTOP, base_url=hub.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/login")
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # The model's files, then the weights: every tensor's shape and dtype from the header alone.
    page.goto(f"/{model}")
    page.get_by_role("button", name=re.compile("Like")).click()
    expect(page.locator(".like-button")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("link", name=re.compile("Files")).first.click()
    expect(page.locator("table.files")).to_contain_text("scanned")
    page.get_by_role("link", name="model.safetensors").click()
    weights = page.locator(".weights")
    expect(weights.locator("h2")).to_contain_text(f"{params:,} parameters")
    expect(weights).to_contain_text("Tensors 1\u2013100 of 272")
    expect(page.locator(".scan-verdict")).to_contain_text("no problems found")
    page.screenshot(path=screenshots / "inspector.png", full_page=False)
    page.get_by_role("link", name="Next").click()
    expect(weights).to_contain_text("Tensors 101\u2013200 of 272")
    page.get_by_role("searchbox", name="Filter tensors by name").fill("layers.7.self_attn")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.tensors tbody tr")).to_have_count(4)
    expect(page.locator("table.tensors")).to_contain_text(f"[{KV}, {HIDDEN}]")

    # The dataset's Viewer tab: splits, the first page, then the next one.
    page.goto(f"/datasets/{data}")
    page.get_by_role("link", name="Viewer").click()
    viewer = page.locator(".dataset-viewer")
    expect(viewer.locator("h2")).to_contain_text("5,000 rows")
    expect(page.locator(".viewer-files")).to_contain_text("test")
    expect(viewer.locator("tbody tr").first).to_contain_text("What is 0 + 0?")
    page.screenshot(path=screenshots / "dataset-viewer.png", full_page=False)
    page.get_by_role("link", name="Next").click()
    expect(viewer.locator("tbody tr").first).to_contain_text("What is 50 * 11?")
    expect(viewer).to_contain_text("1 of 5 row groups")
    page.get_by_role("link", name=re.compile("test-00000")).click()
    expect(viewer.locator("h2")).to_contain_text("200 rows")

    # Readable at phone width: the tables scroll inside their box, not the page.
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, base_url=hub.url)
    small = phone.new_page()
    small.goto(f"/datasets/{data}/viewer")
    expect(small.locator(".dataset-viewer h2")).to_contain_text("5,000 rows")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the viewer scrolls sideways at phone width ({width}px)"
    phone.close()
    context.close()
    assert not problems, problems
