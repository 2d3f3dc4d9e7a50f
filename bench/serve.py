"""Decode tokens/s of the serving engines on the demo SmolLM2-135M-Instruct, direct and through the API.

Rows, all measured in this run, interleaved rep by rep (medians printed):
- every engine called directly (`Engine.generate_batch`, greedy, EOS ignored): transformers fp32 and
  bf16 (the anchor), ONNX Runtime GenAI int4 and fp32, OpenVINO GenAI on the demo's Q4_1 GGUF, and
  llama.cpp on the same GGUF when `llama_cpp` is importable; batch 1 and batch 4;
- `commons serve-model` (engine `auto`) through the official `openai` client: 1 client, then 4 and 8
  concurrent clients (aggregate completion tokens/s, end to end), against the same engine called
  directly with the same batch (API overhead);
- the memory-bandwidth ceiling: read bandwidth (numpy sum over 512 MiB) / bytes of weights per token.

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
    import numpy as np

    data = np.ones(128 * 1024 * 1024, dtype=np.float32)  # 512 MiB, far beyond any cache
    data.sum()
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        data.sum()
        best = max(best, data.nbytes / (time.perf_counter() - t0) / 1e9)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-api", action="store_true", help="engines only, no serve-model process")
    args = parser.parse_args()

    from commons.cli.demo import demo_gguf
    from commons.ml.gguf_convert import convert_gguf
    from commons.serving.onnx_engine import OnnxGenaiEngine
    from commons.serving.transformers_engine import TransformersEngine

    work = Path(tempfile.mkdtemp(prefix="commons-bench-serve-"))
    server: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        print("converting the demo GGUF ...", file=sys.stderr)
        gguf = demo_gguf()
        model_dir = work / "model"
        convert_gguf(gguf, model_dir)
        engines: dict[str, Any] = {
            "transformers fp32": TransformersEngine(model_dir, dtype="float32"),
            "transformers bf16": TransformersEngine(model_dir, dtype="bfloat16"),
            "onnxruntime-genai int4": OnnxGenaiEngine(model_dir, work / "onnx", "int4"),
            "onnxruntime-genai fp32": OnnxGenaiEngine(model_dir, work / "onnx", "fp32"),
        }
        runs: dict[str, Callable[[], float]] = {}
        for name, engine in engines.items():
            for batch in (1, 4):
                runs[f"{name}, batch {batch}"] = lambda e=engine, b=batch: direct_rate(e, b, args.tokens)
        try:
            runs["openvino-genai GGUF Q4_1, batch 1"] = openvino_rate(gguf, args.tokens)
        except Exception as exc:  # a missing or failing candidate is reported, not fatal
            print(f"openvino-genai: not measured ({exc})", file=sys.stderr)
        try:
            runs["llama.cpp GGUF Q4_1, batch 1"] = llamacpp_rate(gguf, args.tokens)
        except ImportError:
            print("llama.cpp: not measured (llama_cpp is not installed)", file=sys.stderr)

        token = url = ""
        if not args.skip_api:
            token = hub_with_demo(work / "home", model_dir)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")},
                   "COMMONS_HOME": str(work / "home")}
            server = subprocess.Popen([sys.executable, "-m", "commons", "serve-model", "demo/SmolLM2-135M-Instruct",
                                       "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                      stderr=(work / "server.log").open("wb"), start_new_session=True)
            import httpx

            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            for clients in (1, 4, 8):
                runs[f"API (serve-model, auto engine), {clients} client(s)"] = \
                    lambda c=clients: api_rates(url, token, c, args.tokens)
            for batch in (1, 4, 8):
                runs[f"same engine direct, end to end, batch {batch}"] = \
                    lambda b=batch: _end_to_end(engines["onnxruntime-genai int4"], b, args.tokens)

        results: dict[str, list[float]] = defaultdict(list)
        # Warm-up: the first call of each row pays for lazy initialisation (kernels, caches, connections).
        for run in runs.values():
            run()
        for rep in range(args.reps):
            for name, run in runs.items():
                results[name].append(run())
                print(f"rep {rep}: {name}: {results[name][-1]:.1f} tok/s", file=sys.stderr)
        bw = bandwidth_gbs()
        report(results, bw, work)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def _end_to_end(engine: Any, batch: int, tokens: int) -> float:
    """Completion tokens/s of one batch, prefill included (what the API rows measure)."""
    from commons.serving.engine import SamplingParams

    prompts = [engine.chat_prompt([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]) for i in range(batch)]
    produced = [0] * batch
    eos = engine.eos_ids

    def on_step(step: list[int]) -> list[bool]:
        done = []
        for i, t in enumerate(step):
            if produced[i] >= 0 and (t in eos or produced[i] >= tokens):
                produced[i] = -produced[i] - 1 if produced[i] >= 0 else produced[i]
            elif produced[i] >= 0:
                produced[i] += 1
            done.append(produced[i] < 0)
        return done

    t0 = time.perf_counter()
    engine.generate_batch(prompts, [SamplingParams(max_tokens=tokens, temperature=0)] * batch, on_step)
    total = sum(-p - 1 if p < 0 else p for p in produced)
    return total / (time.perf_counter() - t0)


def report(results: dict[str, list[float]], bw: float, work: Path) -> None:
    med = {name: statistics.median(v) for name, v in results.items()}
    anchor = med["transformers fp32, batch 1"]
    print(f"\n{'row':58} {'tok/s':>8} {'x tf fp32 b1':>13}")
    for name, value in med.items():
        print(f"{name:58} {value:8.1f} {value / anchor:13.2f}")
    onnx_bytes = sum(f.stat().st_size for f in (work / "onnx").rglob("*int4/model.onnx*"))
    fp32_bytes = sum(f.stat().st_size for f in (work / "model").glob("*.safetensors"))
    print(f"\nread bandwidth (numpy, 1 thread): {bw:.1f} GB/s")
    if onnx_bytes:
        print(f"ceiling int4 ({onnx_bytes / 1e6:.0f} MB/token): {bw * 1e9 / onnx_bytes:.0f} tok/s; "
              f"onnx int4 batch 1 reaches {med['onnxruntime-genai int4, batch 1'] / (bw * 1e9 / onnx_bytes):.0%}")
    print(f"ceiling fp32 ({fp32_bytes / 1e6:.0f} MB/token): {bw * 1e9 / fp32_bytes:.0f} tok/s; "
          f"transformers fp32 batch 1 reaches {anchor / (bw * 1e9 / fp32_bytes):.0%}")
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


if __name__ == "__main__":
    main()
