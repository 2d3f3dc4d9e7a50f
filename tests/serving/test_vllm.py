"""The vLLM engine serves the tiny chat model where a CUDA GPU and vLLM are present (skipped elsewhere, with why)."""

from __future__ import annotations

import pytest

from commons.serving.vllm_engine import available
from tests.serving.conftest import ModelServer, ServingHub

REASON = available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"vLLM engine not testable here: {REASON}")


def test_vllm_engine_chats(serving_hub: ServingHub) -> None:
    openai = pytest.importorskip("openai")
    server = ModelServer(serving_hub.home, "alice/tiny-chat", ("--engine", "vllm")).start(timeout=600)
    try:
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=serving_hub.tokens["alice"], max_retries=0)
        reply = api.chat.completions.create(model="alice/tiny-chat", max_tokens=5, temperature=0,
                                            messages=[{"role": "user", "content": "say hello world"}])
        stats = api.get("/stats", cast_to=dict)
    finally:
        server.stop()
    assert reply.usage is not None and reply.usage.completion_tokens <= 5
    assert stats["engine"] == "vllm"
