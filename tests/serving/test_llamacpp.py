"""The llama.cpp engine: greedy decoding equal to transformers' alone and inside a changing batch, requests
joining a running batch (continuous batching), per-request sampling, and `commons serve-model` on a
GGUF-only repo and on a checkpoint it exports, driven by the official `openai` client."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commons.serving.batcher import Batcher, Delta, Finished
from commons.serving.engine import SamplingParams
from tests.serving.conftest import ModelServer, ServingHub, publish

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/install builds it)")
torch = pytest.importorskip("torch")
openai = pytest.importorskip("openai")

from commons.ml.gguf_export import export_gguf  # noqa: E402
from commons.serving.llamacpp_engine import LlamaCppEngine  # noqa: E402
from tests.ml.tiny_bpe import tiny_bpe_llama  # noqa: E402

PROMPTS = ["The capital of Italy is Rome. Open weights for everyone: the capital of France is",
           "def add(a, b):\n    return a + b  # the hub keeps models, datasets and",
           "Quantization trades a little quality for a lot of memory; the capital of France is",
           "Open weights for everyone: def add(a, b): the hub keeps models, datasets and their"]
STEPS = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny BPE Llama checkpoint and its exact (F32) GGUF export."""
    folder = tiny_bpe_llama(tmp_path_factory.mktemp("tiny") / "model")
    return folder, export_gguf(folder, folder.parent / "tiny-F32.gguf", "F32", name="tiny").path


@pytest.fixture(scope="module")
def engine(tiny: tuple[Path, Path]) -> Iterator[LlamaCppEngine]:
    # Eight prompt tokens per step: prompts are prefilled over several steps, next to decoding rows.
    loaded = LlamaCppEngine(tiny[1], max_batch=4, context=128, threads=1, step_tokens=8)
    yield loaded
    loaded.close()


def transformers_greedy(folder: Path, prompt: list[int], steps: int) -> list[int]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt):]


def test_greedy_equals_transformers_alone_and_in_a_changing_batch(tiny: tuple[Path, Path],
                                                                   engine: LlamaCppEngine) -> None:
    prompts = [engine.encode(p) for p in PROMPTS]
    assert all(len(p) > 8 for p in prompts)  # longer than one step's prompt budget
    expected = [transformers_greedy(tiny[0], p, STEPS) for p in prompts]
    greedy = SamplingParams(max_tokens=STEPS, temperature=0)

    slot = engine.admit(prompts[0], greedy)
    alone: list[int] = []
    while len(alone) < STEPS:
        alone += [t for s, t in engine.step().items() if s == slot]
    engine.release(slot)
    assert alone == expected[0]

    # Two rows first; two more join after three steps, while the first are prefilling or decoding.
    got: dict[int, list[int]] = {}
    order = {engine.admit(prompts[i], greedy): i for i in (0, 1)}
    for step in range(200):
        if step == 3:
            order.update({engine.admit(prompts[i], greedy): i for i in (2, 3)})
        for slot, token in engine.step().items():
            got.setdefault(order[slot], []).append(token)
        for slot in [s for s, i in order.items() if len(got.get(i, [])) >= STEPS]:
            engine.release(slot)
            del order[slot]
        if not order:
            break
    assert [got[i][:STEPS] for i in range(4)] == expected


async def _collect(request: object) -> tuple[str, Finished]:
    text = ""
    async for event in request.events():  # type: ignore[attr-defined]
        if isinstance(event, Delta):
            text += event.text
        else:
            assert isinstance(event, Finished), event
            return text, event
    raise AssertionError("no end")


def test_requests_join_a_running_batch(engine: LlamaCppEngine) -> None:
    """A request sent while another decodes starts at the next step and finishes first; a static batcher
    would make it wait for the long one to end."""
    long_prompt, short_prompt = engine.encode(PROMPTS[2]), engine.encode(PROMPTS[0])
    batcher = Batcher(engine)
    finished: list[str] = []

    async def run() -> tuple[tuple[str, Finished], tuple[str, Finished]]:
        long = batcher.submit(long_prompt, SamplingParams(max_tokens=60, temperature=0))
        events = long.events()
        first = await anext(events)
        assert isinstance(first, Delta)

        async def rest_of_long() -> tuple[str, Finished]:
            text = first.text
            async for event in events:
                if isinstance(event, Delta):
                    text += event.text
                else:
                    assert isinstance(event, Finished)
                    finished.append("long")
                    return text, event
            raise AssertionError("no end")

        async def short() -> tuple[str, Finished]:
            result = await _collect(batcher.submit(short_prompt, SamplingParams(max_tokens=3, temperature=0)))
            finished.append("short")
            return result

        return await asyncio.gather(rest_of_long(), short())

    try:
        (long_text, long_end), (_, short_end) = asyncio.run(run())
        assert long_end.completion_tokens == 60 and short_end.completion_tokens == 3
        assert finished == ["short", "long"]
        assert batcher.stats.max_batch == 2
        assert batcher.stats.requests == 2
        alone, _ = asyncio.run(_collect_one(batcher, long_prompt, SamplingParams(max_tokens=60, temperature=0)))
        assert alone == long_text  # sharing steps did not change the long request's tokens
    finally:
        batcher.close()


async def _collect_one(batcher: Batcher, prompt: list[int], params: SamplingParams) -> tuple[str, Finished]:
    return await _collect(batcher.submit(prompt, params))


def test_each_request_samples_with_its_own_params(engine: LlamaCppEngine) -> None:
    prompt = engine.encode(PROMPTS[1])
    sampled = SamplingParams(max_tokens=16, temperature=1.2, top_p=0.9, seed=5)
    batcher = Batcher(engine)

    async def together() -> list[tuple[str, Finished]]:
        return list(await asyncio.gather(
            _collect(batcher.submit(prompt, sampled)),
            _collect(batcher.submit(prompt, SamplingParams(max_tokens=16, temperature=0))),
            _collect(batcher.submit(prompt, SamplingParams(max_tokens=16, temperature=1.2, top_p=0.9, seed=6)))))

    try:
        alone, _ = asyncio.run(_collect_one(batcher, prompt, sampled))
        (with_others, _), (greedy, _), (other_seed, _) = asyncio.run(together())
        assert with_others == alone  # same seed, same text, whatever shares the step
        assert len({alone, greedy, other_seed}) == 3
        assert batcher.stats.max_batch == 3  # one step served all three samplings
    finally:
        batcher.close()


# --- the server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gguf_repo(serving_hub: ServingHub, tiny: tuple[Path, Path]) -> str:
    """alice/tiny-gguf: a repo with a GGUF file and a card, no config.json (as a quantize job's output)."""
    folder = serving_hub.root / "tiny-gguf"
    folder.mkdir()
    export_gguf(tiny[0], folder / "tiny-Q8_0.gguf", "Q8_0", name="tiny")
    shutil.copy(tiny[0] / "README.md", folder / "README.md")
    publish(serving_hub.services, "alice", "alice/tiny-gguf", folder, private=True)
    return "alice/tiny-gguf"


@pytest.fixture(scope="module")
def gguf_server(serving_hub: ServingHub, gguf_repo: str) -> Iterator[ModelServer]:
    server = ModelServer(serving_hub.home, gguf_repo).start()  # engine auto: only llama.cpp reads a GGUF repo
    yield server
    server.stop()


def test_openai_client_on_a_gguf_repo(gguf_server: ModelServer, gguf_repo: str, serving_hub: ServingHub) -> None:
    token = serving_hub.tokens["alice"]
    assert httpx.get(f"{gguf_server.url}/health").json()["engine"] == "llama.cpp"
    client = openai.OpenAI(base_url=f"{gguf_server.url}/v1", api_key=token, max_retries=0)
    ask = [{"role": "user", "content": "The capital of France is"}]
    whole = client.chat.completions.create(model=gguf_repo, messages=ask, max_tokens=10, temperature=0)  # type: ignore[arg-type]
    assert whole.usage is not None and whole.usage.completion_tokens <= 10
    text = whole.choices[0].message.content or ""
    assert text
    chunks = list(client.chat.completions.create(model=gguf_repo, messages=ask, max_tokens=10, temperature=0,  # type: ignore[arg-type]
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    if len(text) > 4:
        stop = text[2:4]
        cut = client.chat.completions.create(model=gguf_repo, messages=ask, max_tokens=10, temperature=0,  # type: ignore[arg-type]
                                             stop=[stop])
        assert cut.choices[0].message.content == text[: text.index(stop)]
        assert cut.choices[0].finish_reason == "stop"
    with pytest.raises(openai.BadRequestError) as long:
        client.completions.create(model=gguf_repo, prompt="Paris " * 200, max_tokens=4)
    assert long.value.code == "context_length_exceeded"


def test_checkpoint_exported_once_and_served(serving_hub: ServingHub, tiny: tuple[Path, Path]) -> None:
    commit = publish(serving_hub.services, "alice", "alice/tiny-bpe", tiny[0], private=True)
    server = ModelServer(serving_hub.home, f"alice/tiny-bpe@{commit}", ("--engine", "llamacpp", "--gguf-type", "F16"))
    try:
        server.start()
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=serving_hub.tokens["alice"], max_retries=0)
        reply = client.completions.create(model="alice/tiny-bpe", prompt="def add(a, b):", max_tokens=5, temperature=0)
        assert reply.usage is not None and reply.usage.completion_tokens >= 1
    finally:
        server.stop()
    cached = list((serving_hub.home / "serving" / "gguf").glob("*-F16.gguf"))
    assert len(cached) == 1  # the export is kept for the next start


def test_a_request_that_goes_away_frees_its_slot(engine: LlamaCppEngine) -> None:
    """A client that disconnects mid-stream (its event iterator closed) loses its slot at the next step,
    so abandoned requests cannot exhaust the slots."""
    batcher = Batcher(engine)

    async def leave_early() -> None:
        events = batcher.submit(engine.encode(PROMPTS[3]), SamplingParams(max_tokens=100, temperature=0)).events()
        assert isinstance(await anext(events), Delta)
        await events.aclose()

    try:
        for _ in range(engine.max_batch + 2):  # more abandoned requests than there are slots
            asyncio.run(leave_early())
        text, end = asyncio.run(_collect_one(batcher, engine.encode(PROMPTS[0]), SamplingParams(max_tokens=4,
                                                                                                temperature=0)))
        assert end.completion_tokens == 4 and text
    finally:
        batcher.close()
    assert engine.free_slots == engine.max_batch
