"""Our GGUF exports in llama.cpp: next-token logits against transformers, and decode speed, in one run.

    .venv/bin/python bench/gguf_llama_cpp.py MODEL_DIR [--types F16 Q8_0 Q4_0] [--tokens 64] [--threads 2]

MODEL_DIR is a float transformers Llama checkpoint (e.g. the demo model: `commons import gguf` output,
or a `hf download` of demo/SmolLM2-135M-Instruct). The script exports each type with
`commons.ml.gguf_export` into a temporary folder, loads it with llama-cpp-python, and for a few fixed
prompts compares llama.cpp's last-position logits with transformers float32 on the same token ids:

    max |difference| / std(logits)   tolerance F16 0.02, Q8_0 0.10, Q4_0 0.50 (llama.cpp also rounds
                                     activations to 8 bits in Q8_0/Q4_0 dot products)
    ... vs the file's own weights    llama.cpp against transformers on the GGUF read back by our
                                     importer (dequantized): llama.cpp's kernels alone, without the
                                     rounding of the format
    top-1 agreement                  the same next token

Then greedy decode tokens/s at batch 1: llama.cpp per type against transformers float32, interleaved
in the same run, as a ratio. Needs llama-cpp-python (it builds llama.cpp from source: ~11 minutes on
2 idle cores); exits 2 with that message when it is missing. Exits 1 if a type exceeds its tolerance.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOLERANCE = {"F16": 0.02, "Q8_0": 0.10, "Q4_0": 0.50}
PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Quantization trades a little quality for",
           "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"]


def cpp_decode(llm: Any, prompt: list[int], tokens: int) -> float:
    """Greedy decode tokens/s of llama.cpp (prompt included, as for the transformers side)."""
    llm.reset()
    t0 = time.perf_counter()
    for i, _ in enumerate(llm.generate(prompt, temp=0.0, top_k=1, reset=True)):
        if i + 1 >= tokens:
            break
    return tokens / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--types", nargs="+", default=list(TOLERANCE), choices=list(TOLERANCE))
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

    from commons.ml.gguf_convert import convert_gguf
    from commons.ml.gguf_export import export_gguf

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    prompts = [tokenizer(p, add_special_tokens=False).input_ids for p in PROMPTS]
    with torch.no_grad():
        want = [model(torch.tensor([ids])).logits[0, -1].numpy() for ids in prompts]

    def tf_decode() -> float:
        ids = torch.tensor([prompts[0]])
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens,
                           min_new_tokens=args.tokens, do_sample=False)
        return args.tokens / (time.perf_counter() - t0)

    failed = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp:
        for file_type in args.types:
            path = export_gguf(args.model_dir, Path(tmp) / f"model-{file_type}.gguf", file_type).path
            llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=args.threads, logits_all=True,
                                  verbose=False)
            # The file's own weights, read back by our importer: separates the rounding of the
            # format (dequantized vs float32) from llama.cpp's kernels (llama.cpp vs dequantized).
            readback = Path(tmp) / f"readback-{file_type}"
            convert_gguf(path, readback)
            dequantized = AutoModelForCausalLM.from_pretrained(readback, dtype=torch.float32).eval()
            errors, kernel_errors, same = [], [], 0
            for ids, reference in zip(prompts, want, strict=True):
                llm.reset()
                llm.eval(ids)
                got = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
                with torch.no_grad():
                    own = dequantized(torch.tensor([ids])).logits[0, -1].numpy()
                errors.append(float(np.abs(got - reference).max() / reference.std()))
                kernel_errors.append(float(np.abs(got - own).max() / own.std()))
                same += int(got.argmax() == reference.argmax())
            del dequantized

            cpp_decode(llm, prompts[0], args.tokens)
            tf_decode()  # warm-ups
            cpp, tf = [], []
            for _ in range(args.reps):  # interleaved, so load changes hit both
                cpp.append(cpp_decode(llm, prompts[0], args.tokens))
                tf.append(tf_decode())
            llm.close()
            worst = max(errors)
            ok = worst <= TOLERANCE[file_type]
            failed = failed or not ok
            rows.append((file_type, path.stat().st_size, worst, max(kernel_errors), same, statistics.median(cpp),
                         statistics.median(tf), ok))
    print(f"{'type':<6} {'size MB':>8} {'max|dlogit|/std':>16} {'vs own weights':>15} {'top-1 same':>10} "
          f"{'llama.cpp tok/s':>16} {'tf fp32 tok/s':>14} {'ratio':>6}  within tolerance")
    for file_type, size, worst, kernel, same, cpp_speed, tf_speed, ok in rows:
        print(f"{file_type:<6} {size / 1e6:>8.1f} {worst:>16.4f} {kernel:>15.4f} {same:>7}/{len(PROMPTS)} "
              f"{cpp_speed:>16.1f} "
              f"{tf_speed:>14.1f} {cpp_speed / tf_speed:>6.2f}  {'yes' if ok else 'NO'} (<= {TOLERANCE[file_type]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
