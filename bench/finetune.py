"""Fine-tune benchmark: a Commons job against a plain peft + transformers script, interleaved in one run.

    .venv/bin/python bench/finetune.py [--steps 10] [--seq 128] [--batch 2] [--reps 3] [--threads 1] [--home DIR]

Imports the demo content (`commons db upgrade` + `commons demo`: SmolLM2-135M-Instruct as float32
safetensors and the arithmetic instruction dataset) into a temporary COMMONS_HOME (or reuses
`--home`). Then, rep by rep and back to back so machine noise hits both sides alike:

1. **plain**: this file re-run as `--plain MODEL_DIR DATA_DIR`, a ~60-line peft + transformers
   loop over the same materialised files: LoRA r=8, alpha 16 on q_proj/v_proj, AdamW, chat
   template, the same seeded shuffle, fixed steps;
2. **job**: the same recipe submitted as a Commons fine-tune job and run by a `Worker` in this
   process (so the training runs in `python -m commons.ml.run`, with inputs materialised from the
   hub, JSON-lines progress streamed into the database, heartbeats, checks, the loss measured
   before and after on 8 examples, the card, the plot, provenance and the publish commit).

Reported per side: training-loop tokens/s (non-padding tokens through forward + backward, divided
by the loop's wall time; the goal is job/plain >= 0.95), peak RSS of the training process, and
the end-to-end wall time (job: submit to succeeded, including publishing; plain: process start
to exit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL, DATASET = "demo/SmolLM2-135M-Instruct", "demo/arithmetic-instructions"


# ---------------------------------------------------------------- the plain script (child process)
def plain(model_dir: Path, data_dir: Path, steps: int, seq: int, batch: int, threads: int) -> dict[str, Any]:
    """A plain peft + transformers LoRA loop: what a user would write by hand."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    rows = [json.loads(line) for line in (data_dir / "data" / "train.jsonl").read_text().splitlines()]
    examples = []
    for row in rows:
        chat = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["response"]}]
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        examples.append(tokenizer(text, add_special_tokens=False)["input_ids"][:seq])
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(0)).tolist()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    tokens, step_tokens, step_seconds = 0, [], []
    started = time.perf_counter()
    for step in range(steps):
        step_started = time.perf_counter()
        chunk = [examples[i] for i in order[step * batch:(step + 1) * batch]]
        width = max(map(len, chunk))
        ids = torch.tensor([e + [pad] * (width - len(e)) for e in chunk])
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in chunk])
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        step_tokens.append(int(mask.sum()))
        step_seconds.append(time.perf_counter() - step_started)
    seconds = time.perf_counter() - started
    steady = sum(step_tokens[1:]) / sum(step_seconds[1:]) if steps > 1 else tokens / seconds
    return {"tokens": tokens, "train_seconds": seconds, "tokens_per_s": tokens / seconds, "steady_tokens_per_s": steady,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "final_loss": float(loss)}


# ---------------------------------------------------------------- the harness
def sh(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "commons", *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def prepare(home: Path) -> dict[str, str]:
    env = {**os.environ, "COMMONS_HOME": str(home)}
    env.pop("COMMONS_DATABASE_URL", None)
    sh("db", "upgrade", env=env)
    t = time.perf_counter()
    sh("demo", env=env)
    print(f"demo content ready in {time.perf_counter() - t:.0f} s ({home})", file=sys.stderr)
    return env


def run_plain(model_dir: Path, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--plain", str(model_dir), str(data_dir), "--steps",
                          str(args.steps), "--seq", str(args.seq), "--batch", str(args.batch), "--threads",
                          str(args.threads)],
                         check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t
    return result


def run_job(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    from commons.accounts.tokens import actor_for
    from commons.accounts.users import get_user
    from commons.jobs.service import Jobs
    from commons.jobs.worker import Worker, WorkerOptions

    recipe = {"rank": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
              "learning_rate": 2e-4, "schedule": "constant", "max_steps": args.steps, "batch_size": args.batch,
              "max_seq_len": args.seq, "prompt_format": "chat", "max_eval_examples": 8, "seed": 0,
              "num_threads": args.threads or None}
    spec = {"base": {"repo_id": MODEL}, "dataset": {"repo_id": DATASET},
            "output_repo": f"demo/bench-lora-{uuid.uuid4().hex[:8]}", "recipe": recipe}
    t = time.perf_counter()
    with services.session() as session:
        user = get_user(session, "demo")
        actor = actor_for(session, user, "write")
        job_id = Jobs(session, services.storage).submit(actor, "finetune", spec).id
    Worker(services, WorkerOptions(heartbeat_s=5)).run_once()
    wall = time.perf_counter() - t
    with services.session() as session:
        job = Jobs(session, services.storage).get(actor, job_id)
        if job.state != "succeeded":
            raise SystemExit(f"job {job_id} {job.state}: {job.error}")
        timing, metrics = job.result["timing"], job.result["metrics"]
    return {"tokens": timing["tokens"], "train_seconds": timing["train_seconds"],
            "tokens_per_s": timing["tokens_per_s"], "steady_tokens_per_s": timing["steady_tokens_per_s"],
            "peak_rss": timing["peak_memory_bytes"],
            "final_loss": metrics["final_step_loss"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on both sides (0: torch's default). One thread keeps a busy machine's "
                        "noise from turning into OpenMP spin-wait stalls.")
    parser.add_argument("--home", type=Path, help="Reuse a COMMONS_HOME that already holds the demo content.")
    parser.add_argument("--plain", nargs=2, type=Path, metavar=("MODEL_DIR", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        print(json.dumps(plain(args.plain[0], args.plain[1], args.steps, args.seq, args.batch, args.threads)))
        return

    sys.path.insert(0, str(ROOT))
    home = args.home or Path(tempfile.mkdtemp(prefix="commons-bench-ft-"))
    scratch = Path(tempfile.mkdtemp(prefix="commons-bench-inputs-"))
    try:
        measure(args, home, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, scratch: Path) -> None:
    from commons.config import Settings
    from commons.jobs.inputs import materialise
    from commons.services import build_services

    if args.home is None or not (home / "commons.db").exists():
        prepare(home)
    services = build_services(Settings(home=home))
    with services.session() as session:
        from commons.cli.jobs import _operator

        operator = _operator(services)
        model_dir = materialise(session, services.storage, operator, "model", MODEL, "main", scratch / "model").path
        data_dir = materialise(session, services.storage, operator, "dataset", DATASET, "main", scratch / "data").path

    rows: dict[str, list[dict[str, Any]]] = {"plain": [], "job": []}
    for rep in range(args.reps):
        for side in ("plain", "job") if rep % 2 == 0 else ("job", "plain"):
            result = run_plain(model_dir, data_dir, args) if side == "plain" else run_job(services, args)
            rows[side].append(result)
            print(f"rep {rep + 1} {side:<5} {result['tokens_per_s']:7.1f} tok/s, without step 1 "
                  f"{result['steady_tokens_per_s']:7.1f}  ({result['tokens']} tokens in "
                  f"{result['train_seconds']:.1f} s)  peak RSS {result['peak_rss'] / 2**30:.2f} GiB  "
                  f"wall {result['wall_s']:.1f} s  loss {result['final_loss']:.3f}", file=sys.stderr)

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[side])

    def best(side: str, key: str) -> float:
        return max(r[key] for r in rows[side])

    ratio = median("job", "tokens_per_s") / median("plain", "tokens_per_s")
    steady = median("job", "steady_tokens_per_s") / median("plain", "steady_tokens_per_s")
    print(f"\nLoRA r=8 q_proj,v_proj; {args.steps} steps x batch {args.batch} x seq <= {args.seq}; "
          f"{args.reps} reps each, medians (best in brackets); torch threads: {args.threads or 'default'}")
    print(f"{'':<7}{'tokens/s':>10}{'w/o step 1':>12}{'peak RSS GiB':>14}{'wall s':>9}")
    for side in ("plain", "job"):
        print(f"{side:<7}{median(side, 'tokens_per_s'):>10.1f}{median(side, 'steady_tokens_per_s'):>12.1f}"
              f"{median(side, 'peak_rss') / 2**30:>14.2f}{median(side, 'wall_s'):>9.1f}"
              f"   [best {best(side, 'tokens_per_s'):.1f} tok/s]")
    print(f"job / plain tokens/s: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f} %; goal < 5 %)")
    print(f"job / plain tokens/s without the first step: {steady:.3f} (overhead {100 * (1 - steady):+.1f} %)")
    best_ratio = best("job", "tokens_per_s") / best("plain", "tokens_per_s")
    print(f"job / plain, best rep of each: {best_ratio:.3f} (overhead {100 * (1 - best_ratio):+.1f} %)")
    services.close()


if __name__ == "__main__":
    main()
