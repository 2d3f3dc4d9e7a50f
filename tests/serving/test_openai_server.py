"""`commons serve-model` driven by the official `openai` client: chat, streams, stops, usage, errors, auth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.serving.conftest import ModelServer, ServingHub

openai = pytest.importorskip("openai")

MODEL = "alice/tiny-chat"
ASK = [{"role": "user", "content": "say hello world"}]


@pytest.fixture(scope="module")
def server(serving_hub: ServingHub) -> Iterator[ModelServer]:
    server = ModelServer(serving_hub.home, MODEL, ("--engine", "transformers")).start()
    yield server
    server.stop()


def client(server: ModelServer, token: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token or "none", max_retries=0)


@pytest.fixture
def alice(server: ModelServer, serving_hub: ServingHub) -> openai.OpenAI:
    return client(server, serving_hub.tokens["alice"])


def expected_prompt_tokens(serving_hub: ServingHub, messages: list[dict[str, str]]) -> int:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(serving_hub.root / "tiny")
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_models_and_chat(alice: openai.OpenAI, serving_hub: ServingHub) -> None:
    assert [m.id for m in alice.models.list().data] == [MODEL]
    reply = alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=6, temperature=0)
    assert reply.object == "chat.completion" and reply.model == MODEL
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 6
    assert reply.usage.prompt_tokens == expected_prompt_tokens(serving_hub, ASK)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6


def test_stream_matches_whole_reply(alice: openai.OpenAI) -> None:
    whole = alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=10, temperature=0)
    chunks = list(alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=10, temperature=0,
                                                stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # token by token


def test_sse_wire_format(server: ModelServer, serving_hub: ServingHub) -> None:
    body = {"model": MODEL, "prompt": "hello world", "max_tokens": 3, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body,
                      headers={"Authorization": f"Bearer {serving_hub.tokens['alice']}"}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"object": "text_completion"' in events[0]


def test_stop_sequences_and_max_tokens(alice: openai.OpenAI) -> None:
    full = alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, temperature=0)
    text = full.choices[0].message.content or ""
    words = text.split()
    assert len(words) >= 4, text
    stop = words[3]
    cut = alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, temperature=0, stop=stop,
                                             stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == text[: text.index(stop)]
    short = alice.completions.create(model=MODEL, prompt="red green blue", max_tokens=2, temperature=0)
    assert short.usage is not None and short.usage.completion_tokens == 2
    assert short.choices[0].finish_reason == "length"


def test_seeded_sampling_repeats(alice: openai.OpenAI) -> None:
    def sample(seed: int) -> str | None:
        return alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=1.5, top_p=0.9,
                                             seed=seed).choices[0].message.content

    assert sample(11) == sample(11)


def test_bad_requests_get_openai_errors(alice: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        alice.chat.completions.create(model="alice/nope", messages=ASK)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as negative:
        alice.chat.completions.create(model=MODEL, messages=ASK, max_tokens=-1)
    assert negative.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        alice.chat.completions.create(model=MODEL, messages=[{"role": "user"}])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError):
        alice.chat.completions.create(model=MODEL, messages=[{"role": "wizard", "content": "hi"}])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError):
        alice.chat.completions.create(model=MODEL, messages=ASK, temperature=3)
    with pytest.raises(openai.BadRequestError) as long:
        alice.completions.create(model=MODEL, prompt=" ".join(["hello"] * 80), max_tokens=4)
    assert long.value.code == "context_length_exceeded"
    body = long.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}


def test_tokens_are_checked_against_the_hub(server: ModelServer, serving_hub: ServingHub) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(server, None).models.list()
    with pytest.raises(openai.AuthenticationError) as bad:
        client(server, "cm_not-a-token").chat.completions.create(model=MODEL, messages=ASK)
    assert bad.value.code == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError):  # bob may not read alice's private repo
        client(server, serving_hub.tokens["bob"]).chat.completions.create(model=MODEL, messages=ASK, max_tokens=2)
    with pytest.raises(openai.PermissionDeniedError):  # a token scoped to another repo
        client(server, serving_hub.tokens["alice-other-repo"]).models.list()


def test_concurrent_requests_share_batches(server: ModelServer, serving_hub: ServingHub) -> None:
    token = serving_hub.tokens["alice"]
    headers = {"Authorization": f"Bearer {token}"}
    before = httpx.get(f"{server.url}/v1/stats", headers=headers).json()

    async def run() -> list[str | None]:
        async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0) as aclient:
            replies = await asyncio.gather(*[
                aclient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": w}],
                                                max_tokens=20, temperature=0)
                for w in ("hello", "red green", "one two", "cat dog")])
        return [r.choices[0].message.content for r in replies]

    texts = asyncio.run(run())
    after = httpx.get(f"{server.url}/v1/stats", headers=headers).json()
    assert after["requests"] - before["requests"] == 4
    # Four requests in at most two engine calls: the first may start alone, the other three wait for
    # it and then go together. Serialised requests would take four.
    assert after["batches"] - before["batches"] <= 2
    assert after["max_batch"] >= 3
    assert all(texts)
