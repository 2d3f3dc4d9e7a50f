"""The demo: `commons demo` imports SmolLM2-135M-Instruct, and the model served by the hub talks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubserver import HubServer, free_port, new_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_hub() -> Iterator[HubServer]:
    server = HubServer(new_home(), free_port())
    server.provision()
    env = {**server.env(), "COMMONS_HOME": str(server.home)}
    for _ in range(2):  # the second run must be a no-op
        out = subprocess.run([sys.executable, "-m", "commons", "demo"], env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    assert "already imported" in out.stderr
    server.start()
    yield server
    server.stop()


def test_demo_model_generates(demo_hub: HubServer, tmp_path: Path) -> None:
    code = f"""
import os
from collections.abc import Iterator
os.environ["HF_ENDPOINT"] = {demo_hub.url!r}
os.environ["HF_HOME"] = {str(tmp_path)!r}
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("demo/SmolLM2-135M-Instruct")
model = AutoModelForCausalLM.from_pretrained("demo/SmolLM2-135M-Instruct")
msgs = [{{"role": "user", "content": "What is the capital of France?"}}]
ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt")
ids = ids if hasattr(ids, "shape") else ids["input_ids"]
out = model.generate(ids, max_new_tokens=30, do_sample=False)
print(tok.decode(out[0][ids.shape[1]:], skip_special_tokens=True))
"""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_CACHE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Paris" in out.stdout


def test_demo_card_and_dataset(demo_hub: HubServer) -> None:
    import json

    from huggingface_hub import hf_hub_download

    info = demo_hub.api(None).model_info("demo/SmolLM2-135M-Instruct")
    assert info.card_data["license"] == "apache-2.0"
    assert info.card_data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"config.json", "model.safetensors", "tokenizer.json", "conversion.json"} <= {
        s.rfilename for s in info.siblings}
    path = hf_hub_download("demo/arithmetic-instructions", "data/test.jsonl", repo_type="dataset",
                           endpoint=demo_hub.url, token=False)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert len(rows) == 200 and {"instruction", "response"} <= set(rows[0])
