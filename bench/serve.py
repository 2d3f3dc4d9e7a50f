"""Decode tokens/s of the serving engines on the demo SmolLM2-135M-Instruct, direct and through the API.

Rows, all measured in this run, interleaved rep by rep (medians printed):
- every engine called directly (greedy, EOS ignored): transformers fp32 (the anchor) and bf16,
  ONNX Runtime GenAI int4, OpenVINO GenAI on the demo's Q4_1 GGUF, and our llama.cpp engine
  (continuous batching) on the demo's Q4_1 GGUF and on our Q8_0 and F16 exports, at batch 1 and 8; plus
  llama-cpp-python's own `Llama.generate` on the same files (llama.cpp at the same precision);
- `commons serve-model` (engine `auto`: llama.cpp on our F16 export) through the official `openai`
  client: 1, 4 and 8 concurrent clients (aggregate completion tokens/s, end to end), against the same
  engine driven directly with the same batch (API overhead);
- staggered arrivals: 8 clients starting 150 ms apart, time to first token and total time, for
  `serve-model` with llama.cpp (continuous batching) and with ONNX Runtime GenAI (static batches);
- the memory-bandwidth ceiling: read bandwidth (numpy sums, one thread per core, 256 MiB each) / bytes
  of weights per token.

    .venv/bin/python bench/serve.py [--reps 3] [--tokens 64] [--skip-api]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAUSE_S = 1.0
PROMPT = "Write a long story about a dragon who learns to read."
PROMPTS = [PROMPT, "Explain how a bicycle works, step by step.", "List the planets and describe each one.",
           "Tell me about the history of Rome."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def direct_rate(engine: Any, batch: int, tokens: int) -> float:
    """Aggregate decode tokens/s of one `generate_batch` call: steps after the first, times rows."""
    from commons.serving.engine import SamplingParams

    prompts = [engine.chat_prompt([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]) for i in range(batch)]
    stamps: list[float] = []

    def on_step(step: list[int]) -> list[bool]:
        stamps.append(time.perf_counter())
        return [len(stamps) >= tokens] * len(step)

    engine.generate_batch(prompts, [SamplingParams(max_tokens=tokens, temperature=0)] * batch, on_step)
    return (len(stamps) - 1) * batch / (stamps[-1] - stamps[0])


def continuous_rate(engine: Any, batch: int, tokens: int) -> float:
    """Aggregate decode tokens/s of a continuous engine with `batch` rows: steps where every row got a
    token, after the first such step, times rows / time."""
    from commons.serving.engine import SamplingParams

    slots = [engine.admit(engine.chat_prompt([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]),
                          SamplingParams(max_tokens=tokens, temperature=0)) for i in range(batch)]
    stamps: list[float] = []
    try:
        while len(stamps) < tokens:
            if len(engine.step()) == batch:
                stamps.append(time.perf_counter())
    finally:
        for slot in slots:
            engine.release(slot)
    return (len(stamps) - 1) * batch / (stamps[-1] - stamps[0])


def continuous_end_to_end(engine: Any, batch: int, tokens: int) -> float:
    """Completion tokens/s of `batch` requests admitted together, prefill included, EOS honoured."""
    from commons.serving.engine import SamplingParams

    t0 = time.perf_counter()
    produced = {engine.admit(engine.chat_prompt([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]),
                             SamplingParams(max_tokens=tokens, temperature=0)): 0 for i in range(batch)}
    live = set(produced)
    while live:
        for slot, token in engine.step().items():
            if token in engine.eos_ids:
                live.discard(slot)
                continue
            produced[slot] += 1
            if produced[slot] >= tokens:
                live.discard(slot)
        for slot in [s for s in produced if s not in live]:
            engine.release(slot)
    return sum(produced.values()) / (time.perf_counter() - t0)


def openvino_rate(gguf: Path, tokens: int) -> Callable[[], float]:
    import openvino_genai as ov

    pipe = ov.LLMPipeline(str(gguf), "CPU")
    config = ov.GenerationConfig()
    config.max_new_tokens, config.do_sample, config.ignore_eos = tokens, False, True

    def run() -> float:
        result = pipe.generate([PROMPT], config)
        return float(result.perf_metrics.get_throughput().mean)

    return run


def llamacpp_rate(gguf: Path, tokens: int) -> Callable[[], float]:
    from llama_cpp import Llama

    llm = Llama(str(gguf), n_threads=os.cpu_count() or 2, n_ctx=512, verbose=False)
    ids = llm.tokenize(PROMPT.encode())

    def run() -> float:
        llm.reset()
        stamps = []
        for _ in llm.generate(ids, temp=0.0):
            stamps.append(time.perf_counter())
            if len(stamps) >= tokens:
                break
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    return run


def bandwidth_gbs() -> float:
    """Read bandwidth with every core reading its own 256 MiB (numpy's sum releases the GIL)."""
    import threading

    import numpy as np

    threads = len(os.sched_getaffinity(0))
    parts = [np.ones(64 * 1024 * 1024, dtype=np.float32) for _ in range(threads)]  # far beyond any cache
    best = 0.0
    for _ in range(3):
        workers = [threading.Thread(target=part.sum) for part in parts]
        t0 = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, sum(part.nbytes for part in parts) / (time.perf_counter() - t0) / 1e9)
    return best


def hub_with_demo(root: Path, model_dir: Path) -> str:
    """A data directory holding demo/SmolLM2-135M-Instruct and a read token for user demo."""
    from commons.accounts.tokens import actor_for, issue_token
    from commons.accounts.users import create_user
    from commons.config import Settings
    from commons.db import migrate
    from commons.hub.ids import RepoRef, RepoType
    from commons.hub.publish import commit_directory
    from commons.hub.repos import Repos
    from commons.services import build_services

    settings = Settings(home=root)
    root.mkdir(parents=True)
    migrate.upgrade(settings.sqlalchemy_url)
    services = build_services(settings)
    with services.session() as session:
        user = create_user(session, "demo")
        actor = actor_for(session, user, "write")
        token = issue_token(session, user, "bench", "read")
        repos = Repos(session, services.storage)
        repo = repos.create(actor, RepoRef.parse(RepoType.MODEL, "demo/SmolLM2-135M-Instruct"))
        session.flush()
        commit_directory(session, services.storage, repo, repos.git(repo), actor, model_dir, "demo")
    services.close()
    return token


def api_rates(url: str, token: str, clients: int, tokens: int) -> float:
    import openai

    async def one(api: Any, i: int) -> int:
        reply = await api.chat.completions.create(
            model="demo/SmolLM2-135M-Instruct", max_tokens=tokens, temperature=0,
            messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
        return int(reply.usage.completion_tokens)

    async def run() -> float:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as api:
            t0 = time.perf_counter()
            counts = await asyncio.gather(*[one(api, i) for i in range(clients)])
            return sum(counts) / (time.perf_counter() - t0)

    return asyncio.run(run())


def staggered(url: str, token: str, clients: int, gap_s: float, tokens: int) -> tuple[float, float]:
    """Clients starting `gap_s` apart, each streaming `tokens` tokens: (mean time to first token, total time)."""
    import openai

    async def one(api: Any, i: int) -> float:
        await asyncio.sleep(i * gap_s)
        t0 = time.perf_counter()
        first = 0.0
        stream = await api.chat.completions.create(
            model="demo/SmolLM2-135M-Instruct", max_tokens=tokens, temperature=0, stream=True,
            messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
        async for chunk in stream:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - t0
        return first

    async def run() -> tuple[float, float]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as api:
            t0 = time.perf_counter()
            firsts = await asyncio.gather(*[one(api, i) for i in range(clients)])
            return statistics.mean(firsts), time.perf_counter() - t0

    return asyncio.run(run())


class ModelServer:
    """`commons serve-model demo/SmolLM2-135M-Instruct` in its own session on a loopback port."""

    def __init__(self, home: Path, engine: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}, "COMMONS_HOME": str(home)}
        self.proc = subprocess.Popen([sys.executable, "-m", "commons", "serve-model", "demo/SmolLM2-135M-Instruct",
                                      "--port", self.url.rsplit(":", 1)[1], "--engine", engine], env=env,
                                     stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)
        import httpx

        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve-model --engine {engine} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError(f"serve-model --engine {engine} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-api", action="store_true", help="engines only, no serve-model process")
    args = parser.parse_args()

    from commons.cli.demo import demo_gguf
    from commons.ml.gguf_convert import convert_gguf
    from commons.ml.gguf_export import export_gguf
    from commons.serving.llamacpp_engine import LlamaCppEngine
    from commons.serving.onnx_engine import OnnxGenaiEngine
    from commons.serving.transformers_engine import TransformersEngine

    work = Path(tempfile.mkdtemp(prefix="commons-bench-serve-"))
    servers: list[ModelServer] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        print("converting the demo GGUF ...", file=sys.stderr)
        gguf = demo_gguf()
        model_dir = work / "model"
        convert_gguf(gguf, model_dir)
        q8 = export_gguf(model_dir, work / "demo-Q8_0.gguf", "Q8_0").path
        f16 = export_gguf(model_dir, work / "demo-F16.gguf", "F16").path
        batched: dict[str, Any] = {
            "transformers fp32": TransformersEngine(model_dir, dtype="float32"),
            "transformers bf16": TransformersEngine(model_dir, dtype="bfloat16"),
            "onnxruntime-genai int4": OnnxGenaiEngine(model_dir, work / "onnx", "int4"),
        }
        continuous: dict[str, Any] = {
            "llama.cpp engine, GGUF Q4_1": LlamaCppEngine(gguf, max_batch=8, context=1024),
            "llama.cpp engine, our Q8_0": LlamaCppEngine(q8, max_batch=8, context=1024),
            "llama.cpp engine, our F16": LlamaCppEngine(f16, max_batch=8, context=1024),
        }
        runs: dict[str, Callable[[], float]] = {"transformers fp32, batch 1": lambda: direct_rate(
            batched["transformers fp32"], 1, args.tokens)}
        runs["transformers bf16, batch 1"] = lambda: direct_rate(batched["transformers bf16"], 1, args.tokens)
        for batch in (1, 8):
            runs[f"onnxruntime-genai int4, batch {batch}"] = lambda b=batch: direct_rate(
                batched["onnxruntime-genai int4"], b, args.tokens)
            for name, engine in continuous.items():
                runs[f"{name}, batch {batch}"] = lambda e=engine, b=batch: continuous_rate(e, b, args.tokens)
        runs["llama-cpp-python Llama.generate, GGUF Q4_1, batch 1"] = llamacpp_rate(gguf, args.tokens)
        runs["llama-cpp-python Llama.generate, our Q8_0, batch 1"] = llamacpp_rate(q8, args.tokens)
        runs["llama-cpp-python Llama.generate, our F16, batch 1"] = llamacpp_rate(f16, args.tokens)
        try:
            runs["openvino-genai GGUF Q4_1, batch 1"] = openvino_rate(gguf, args.tokens)
        except Exception as exc:  # a missing or failing candidate is reported, not fatal
            print(f"openvino-genai: not measured ({exc})", file=sys.stderr)

        token = ""
        staggers: dict[str, list[tuple[float, float]]] = defaultdict(list)
        if not args.skip_api:
            token = hub_with_demo(work / "home", model_dir)
            auto = ModelServer(work / "home", "auto", work / "auto.log")
            servers.append(auto)
            onnx = ModelServer(work / "home", "onnx", work / "onnx.log")
            servers.append(onnx)
            for clients in (1, 4, 8):
                runs[f"API (serve-model, auto engine), {clients} client(s)"] = \
                    lambda c=clients: api_rates(auto.url, token, c, args.tokens)
                runs[f"same engine direct, end to end, batch {clients}"] = \
                    lambda b=clients: continuous_end_to_end(continuous["llama.cpp engine, our F16"], b, args.tokens)

        results: dict[str, list[float]] = defaultdict(list)
        # Warm-up: the first call of each row pays for lazy initialisation (kernels, caches, connections).
        for run in runs.values():
            run()
        for rep in range(args.reps):
            for name, run in runs.items():
                # A pause first: thread pools of the previous row (OpenMP in torch, ONNX Runtime's,
                # ggml's) spin for a while after their last work, and llama.cpp's spinning barriers
                # collapse when they share the cores with spinning threads (see README, Serving).
                time.sleep(PAUSE_S)
                results[name].append(run())
                print(f"rep {rep}: {name}: {results[name][-1]:.1f} tok/s", file=sys.stderr)
            time.sleep(PAUSE_S)
            for label, server in (("llama.cpp, continuous", servers[0] if servers else None),
                                  ("onnxruntime-genai, static batches", servers[1] if servers else None)):
                if server is not None:
                    staggers[label].append(staggered(server.url, token, 8, 0.15, args.tokens))
                    print(f"rep {rep}: staggered {label}: {staggers[label][-1]}", file=sys.stderr)
        bw = bandwidth_gbs()
        report(results, staggers, bw, work, {"GGUF Q4_1": gguf, "our Q8_0": q8, "our F16": f16})
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[float]], staggers: dict[str, list[tuple[float, float]]], bw: float,
           work: Path, files: dict[str, Path]) -> None:
    med = {name: statistics.median(v) for name, v in results.items()}
    anchor = med["transformers fp32, batch 1"]
    print(f"\n{'row':58} {'tok/s':>8} {'x tf fp32 b1':>13}")
    for name, value in med.items():
        print(f"{name:58} {value:8.1f} {value / anchor:13.2f}")
    print(f"\nread bandwidth (numpy, one thread per core): {bw:.1f} GB/s")
    sizes = {"onnxruntime-genai int4": sum(f.stat().st_size for f in (work / "onnx").rglob("*int4/model.onnx*")),
             **{f"llama.cpp engine, {label}": path.stat().st_size for label, path in files.items()},
             "transformers fp32": sum(f.stat().st_size for f in (work / "model").glob("*.safetensors"))}
    for name, size in sizes.items():
        ceiling = bw * 1e9 / size
        print(f"ceiling {name} ({size / 1e6:.0f} MB/token): {ceiling:.0f} tok/s; batch 1 reaches "
              f"{med[f'{name}, batch 1'] / ceiling:.0%}")
    for name in ("onnxruntime-genai int4", *(f"llama.cpp engine, {label}" for label in files)):
        print(f"{name}: batch 8 / batch 1 = {med[f'{name}, batch 8'] / med[f'{name}, batch 1']:.2f}x")
    for label in files:
        own = f"llama.cpp engine, {label}"
        ref = med[f"llama-cpp-python Llama.generate, {label}, batch 1"]
        print(f"{own} batch 1 / llama-cpp-python's own loop: {med[f'{own}, batch 1'] / ref:.2f}")
    for clients in (1, 4, 8):
        api = med.get(f"API (serve-model, auto engine), {clients} client(s)")
        direct = med.get(f"same engine direct, end to end, batch {clients}")
        if api and direct:
            print(f"API / direct, {clients} client(s): {api / direct:.2f} (API {api:.1f} vs direct {direct:.1f} tok/s)")
    one = med.get("API (serve-model, auto engine), 1 client(s)")
    for clients in (4, 8):
        many = med.get(f"API (serve-model, auto engine), {clients} client(s)")
        if one and many:
            print(f"{clients} clients / 1 client through the API: {many / one:.2f}x")
    for label, values in staggers.items():
        ttft = statistics.median(v[0] for v in values)
        total = statistics.median(v[1] for v in values)
        print(f"8 clients 150 ms apart, {label}: mean time to first token {ttft * 1000:.0f} ms, "
              f"all done in {total:.1f} s")


if __name__ == "__main__":
    main()
