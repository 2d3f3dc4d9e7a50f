"""The model card of a quantize job's repo: Hub metadata, the quality report, and how to load each variant."""

from __future__ import annotations

from typing import Any

import yaml

from commons.ml.card import base_license
from commons.ml.specs import QuantizeSpec

__all__ = ["base_license", "model_card", "quality_table"]


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def _speed(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "n/a"


def quality_table(report: dict[str, Any]) -> str:
    """The markdown table: one row for the source, one per variant."""
    src = report["source"]
    lines = ["| variant | file | size | perplexity | change | next-token agreement | decode tok/s | measured with |",
             "|---|---|---|---|---|---|---|---|",
             f"| source (float32) | `{src['repo_id']}` | {_size(src['size_bytes'])} | {src['perplexity']:.3f} | - | "
             f"100 % | {_speed(src['tokens_per_s'])} | transformers |"]
    for row in report["variants"]:
        lines.append(
            f"| {row['variant']} | `{row['path']}` | {_size(row['size_bytes'])} | {row['perplexity']:.3f} | "
            f"{row['perplexity_change_pct']:+.2f} % | {100 * row['agreement']:.1f} % | {_speed(row['tokens_per_s'])} | "
            f"{row['speed_engine'] or 'no GGUF runtime installed'} |")
    return "\n".join(lines)


def model_card(spec: QuantizeSpec, report: dict[str, Any], license_: str | None) -> str:
    """README.md with `base_model` and `base_model_relation: quantized`, and a body that says what was measured."""
    repo_id = spec.output_repo or "this model"
    rows = report["variants"]
    formats = {r["format"] for r in rows}
    meta: dict[str, Any] = {
        "base_model": spec.base.repo_id,
        "base_model_relation": "quantized",
        "library_name": "transformers" if "torchao" in formats else "gguf",
        "pipeline_tag": "text-generation",
        "tags": ["quantized", *sorted(formats), "commons-quantize"],
    }
    if license_:
        meta["license"] = license_
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    held = report["held_out"]
    machine = report["machine"]
    details = "\n".join(f"- **{r['variant']}** (`{r['path']}`): {r['detail']}" for r in rows)
    use = []
    ggufs = [r for r in rows if r["format"] == "gguf"]
    if ggufs:
        example = ggufs[-1]["path"]
        use.append(f"""GGUF (llama.cpp, llama-cpp-python, Ollama):

```python
from huggingface_hub import hf_hub_download
from llama_cpp import Llama
llm = Llama(model_path=hf_hub_download("{repo_id}", "{example}"))
print(llm.create_chat_completion([{{"role": "user", "content": "Hello"}}])["choices"][0]["message"]["content"])
```""")
    for r in rows:
        if r["format"] == "torchao":
            use.append(f"""{r['variant']} (transformers + torchao):

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("{repo_id}", subfolder="{r['variant']}")
tokenizer = AutoTokenizer.from_pretrained("{repo_id}", subfolder="{r['variant']}")
```""")
            break
    use_text = "\n\n".join(use)
    return f"""---
{front}---

# {repo_id.split("/")[-1]}

Quantized variants of [{spec.base.repo_id}](/{spec.base.repo_id}) (commit `{spec.base.revision}`), made and
measured by a Commons quantize job.

## Quality report

{quality_table(report)}

- **Perplexity** on {held['scored_tokens']:,} tokens of held-out text ({held['text']}), scored in
  non-overlapping windows of {held['window']} tokens; **change** is against the float32 source on the same ids.
- **Next-token agreement**: share of those positions where the variant's most likely next token is the
  source's.
- **GGUF rows measure the quantization error of the file**: its tensors are read back with `gguf`,
  dequantized to float32 and run in transformers. llama.cpp's own kernels add a little (they round
  activations to 8 bits in quantized products), which these figures do not include. F16/Q8_0/Q4_0 files
  are written by Commons and hold the same bytes llama.cpp's quantizer writes from the same weights;
  K-quant files (Q4_K_M, Q5_K_M, Q6_K) are written by llama.cpp's quantizer itself.
- **Decode tok/s**: greedy, batch 1, {machine['decode_tokens']} new tokens after the prompt, on the machine
  that ran the job ({machine['cpu']}, {machine['threads']} threads); "n/a" where no runtime for the format
  was installed. Speeds depend on that machine; sizes, perplexities and agreement do not.

## Variants

{details}

## Use

{use_text}

## Provenance

`provenance.json` records the spec, the source commit, library versions, hardware and the sha256 of
every file here; `quality.json` holds the report above as data.
"""
