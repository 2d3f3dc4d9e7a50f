"""Our GGUF files against llama.cpp's own quantization of the same weights, in llama.cpp, in one run.

    .venv/bin/python bench/gguf_llama_cpp.py MODEL_DIR [--types F16 Q8_0 Q4_0 Q4_K_M Q5_K_M Q6_K]
        [--eval-tokens 4096] [--tokens 64] [--reps 3] [--threads 2]

MODEL_DIR is a float transformers Llama checkpoint (e.g. the demo model: `commons import gguf` output,
or a `hf download` of demo/SmolLM2-135M-Instruct). For each type the script writes the file the
quantize job writes (F16/Q8_0/Q4_0 with `commons.ml.gguf_export`; K-quants by llama.cpp's quantizer
from our F32 export) and, as the anchor, llama.cpp's own quantization (`llama_model_quantize`,
llama-quantize's defaults) of our lossless F32 export: the same numbers in, llama.cpp's choices out.

    tensors = llama.cpp's    tensors whose type and bytes are identical in the two files
    Δ ours / Δ llama.cpp's   max |llama.cpp logits - transformers float32 logits| / std, last position,
                             worst of 4 prompts, on our file and on llama.cpp's own file
    criterion                Δ ours <= Δ llama.cpp's x 1.05 + 0.001, and for F16 also Δ ours <= 0.02:
                             llama.cpp's kernels round activations to 8 bits in quantized products, so
                             a fixed figure against the float source measures llama.cpp as much as us
    Δ vs own weights         llama.cpp against transformers running the file's own weights read back
                             (dequantized by `gguf`): llama.cpp's kernels alone
    ppl, agreement           the quantize job's quality figures: the read-back in transformers, perplexity
                             on `--eval-tokens` held-out tokens and next-token agreement with float32

Then greedy decode tokens/s at batch 1: llama.cpp per type against transformers float32, interleaved
in the same run, as a ratio. Needs llama-cpp-python; exits 2 with that message when it is missing,
1 if a type misses its criterion.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TYPES = ["F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"]
WRITTEN_BY_US = ("F16", "Q8_0", "Q4_0")  # the rest are llama.cpp's quantizer on our F32 export
F16_TOLERANCE = 0.02
RELATIVE, EPSILON = 1.05, 0.001
PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Quantization trades a little quality for",
           "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"]


@dataclass
class Row:
    file_type: str
    size: int
    same_tensors: int
    tensors: int
    ours: float
    theirs: float
    kernel: float
    top1: int
    perplexity: float
    agreement: float
    cpp_speed: float = 0.0
    tf_speed: float = 0.0

    @property
    def ok(self) -> bool:
        within = self.ours <= self.theirs * RELATIVE + EPSILON
        return within and (self.file_type != "F16" or self.ours <= F16_TOLERANCE)


def cpp_decode(llm: Any, prompt: list[int], tokens: int) -> float:
    """Greedy decode tokens/s of llama.cpp (prompt included, as for the transformers side)."""
    llm.reset()
    t0 = time.perf_counter()
    for i, _ in enumerate(llm.generate(prompt, temp=0.0, top_k=1, reset=True)):
        if i + 1 >= tokens:
            break
    return tokens / (time.perf_counter() - t0)


def same_tensors(ours: Path, theirs: Path) -> tuple[int, int]:
    """(tensors identical in type and bytes, tensors in our file)."""
    from gguf import GGUFReader

    a = {t.name: t for t in GGUFReader(ours).tensors}
    b = {t.name: t for t in GGUFReader(theirs).tensors}
    same = sum(1 for name, t in a.items() if name in b and t.tensor_type == b[name].tensor_type
               and t.data.tobytes() == b[name].data.tobytes())
    return same, len(a)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--types", nargs="+", default=TYPES, choices=TYPES)
    parser.add_argument("--eval-tokens", type=int, default=4096, help="held-out tokens for perplexity/agreement")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per decode rep")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: pip install llama-cpp-python (builds llama.cpp, ~11 min on 2 cores)",
              file=sys.stderr)
        return 2
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from commons.ml import gguf_llamacpp, quantize_eval
    from commons.ml.gguf_export import export_gguf
    from commons.ml.quantize import gguf_as_torch

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    prompts = [tokenizer(p, add_special_tokens=False).input_ids for p in PROMPTS]
    with torch.no_grad():
        want = [model(torch.tensor([ids])).logits[0, -1].numpy() for ids in prompts]
    held_out = quantize_eval.held_out_ids(tokenizer, args.eval_tokens)
    reference = quantize_eval.score(model, held_out, args.window)

    def tf_decode() -> float:
        ids = torch.tensor([prompts[0]])
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens,
                           min_new_tokens=args.tokens, do_sample=False)
        return args.tokens / (time.perf_counter() - t0)

    def distances(path: Path, references: list[Any]) -> tuple[float, int]:
        """Worst max|Δ|/std over the prompts, and how many prompts pick the same top-1 token."""
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=args.threads, logits_all=True,
                              verbose=False)
        worst, same = 0.0, 0
        for ids, ref in zip(prompts, references, strict=True):
            llm.reset()
            llm.eval(ids)
            got = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
            worst = max(worst, float(np.abs(got - ref).max() / ref.std()))
            same += int(got.argmax() == ref.argmax())
        llm.close()
        return worst, same

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp_name:
        tmp = Path(tmp_name)
        lossless = export_gguf(args.model_dir, tmp / "model-F32.gguf", "F32").path
        for file_type in args.types:
            theirs = gguf_llamacpp.quantize(lossless, tmp / f"llama-cpp-{file_type}.gguf", file_type,
                                            threads=args.threads).path
            if file_type in WRITTEN_BY_US:
                ours = export_gguf(args.model_dir, tmp / f"model-{file_type}.gguf", file_type).path
            else:
                ours = theirs  # the quantize job's K-quant file is llama.cpp's, by construction
            same, total = same_tensors(ours, theirs)
            ours_distance, top1 = distances(ours, want)
            theirs_distance = ours_distance if ours == theirs else distances(theirs, want)[0]
            readback = gguf_as_torch(ours, model)
            with torch.no_grad():
                own = [readback(torch.tensor([ids])).logits[0, -1].numpy() for ids in prompts]
            scores = quantize_eval.score(readback, held_out, args.window)
            del readback
            kernel, _ = distances(ours, own)
            rows.append(Row(file_type, ours.stat().st_size, same, total, ours_distance, theirs_distance, kernel,
                            top1, scores.perplexity, scores.agreement(reference)))
            if ours != theirs:
                theirs.unlink()

            llm = llama_cpp.Llama(model_path=str(ours), n_ctx=512, n_threads=args.threads, verbose=False)
            cpp_decode(llm, prompts[0], args.tokens)
            tf_decode()  # warm-ups
            cpp, tf = [], []
            for _ in range(args.reps):  # interleaved, so load changes hit both
                cpp.append(cpp_decode(llm, prompts[0], args.tokens))
                tf.append(tf_decode())
            llm.close()
            rows[-1].cpp_speed, rows[-1].tf_speed = statistics.median(cpp), statistics.median(tf)

    print(f"source float32: perplexity {reference.perplexity:.3f} on {reference.count} held-out tokens "
          f"(windows of {args.window})")
    print(f"{'type':<7} {'size MB':>8} {'tensors = llama.cpp':>20} {'Δ ours':>8} {'Δ llama.cpp':>12} "
          f"{'ratio':>6} {'Δ vs own weights':>17} {'top-1 same':>10} {'ppl':>8} {'Δppl %':>7} {'agree %':>7}"
          "  criterion")
    for r in rows:
        ratio = r.ours / r.theirs if r.theirs else 1.0
        rule = f"<= {RELATIVE} x llama.cpp + {EPSILON}" + (f", <= {F16_TOLERANCE}" if r.file_type == "F16" else "")
        print(f"{r.file_type:<7} {r.size / 1e6:>8.1f} {f'{r.same_tensors}/{r.tensors}':>20} {r.ours:>8.4f} "
              f"{r.theirs:>12.4f} {ratio:>6.3f} {r.kernel:>17.4f} {f'{r.top1}/{len(PROMPTS)}':>10} "
              f"{r.perplexity:>8.3f} {100 * (r.perplexity / reference.perplexity - 1):>+7.2f} "
              f"{100 * r.agreement:>7.1f}  {'yes' if r.ok else 'NO'} ({rule})")
    print(f"\n{'type':<7} {'llama.cpp tok/s':>16} {'tf fp32 tok/s':>14} {'ratio':>6}")
    for r in rows:
        print(f"{r.file_type:<7} {r.cpp_speed:>16.1f} {r.tf_speed:>14.1f} {r.cpp_speed / r.tf_speed:>6.2f}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
