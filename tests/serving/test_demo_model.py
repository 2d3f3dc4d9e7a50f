"""The demo SmolLM2-135M-Instruct, served with the default engine choice and with ONNX Runtime GenAI, knows
the capital of France."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from commons.accounts.tokens import issue_token
from commons.accounts.users import get_user
from tests.hubserver import new_home
from tests.jobs.local import local_services, user_actor
from tests.serving.conftest import ModelServer, publish

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_home() -> Iterator[tuple[Path, str]]:
    from commons.cli.demo import demo_gguf
    from commons.ml.gguf_convert import convert_gguf

    root = new_home("commons-serving-demo-")
    services = local_services(root / "home")
    user_actor(services, "demo")
    convert_gguf(demo_gguf(), root / "model")
    publish(services, "demo", "demo/SmolLM2-135M-Instruct", root / "model", private=False)
    with services.session() as session:
        user = get_user(session, "demo")
        assert user is not None
        token = issue_token(session, user, "t", "read")
    services.close()
    yield root / "home", token
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("engine", ["auto", "onnx"])
def test_demo_answers_paris(demo_home: tuple[Path, str], engine: str) -> None:
    from importlib.util import find_spec

    home, token = demo_home
    server = ModelServer(home, "demo/SmolLM2-135M-Instruct", ("--engine", engine)).start(timeout=300)
    try:
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
        reply = api.chat.completions.create(model="demo/SmolLM2-135M-Instruct", max_tokens=20, temperature=0,
                                            messages=[{"role": "user", "content": "What is the capital of France?"}])
        stats = api.get("/stats", cast_to=dict)
    finally:
        server.stop()
    assert "Paris" in (reply.choices[0].message.content or "")
    # What "auto" picks on CPU: llama.cpp (our Q8_0 export of the checkpoint) where it is installed.
    chosen = "llama.cpp" if find_spec("llama_cpp") else "onnxruntime-genai"
    assert stats["engine"] == {"auto": chosen, "onnx": "onnxruntime-genai"}[engine]
