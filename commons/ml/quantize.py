"""A quantize job: check -> load the source -> write each variant -> measure it -> card + provenance.

    workdir/inputs/base/            the float model at its commit (materialised by the caller)
    workdir/output/NAME-F16.gguf    GGUF variants for llama.cpp / llama-cpp-python / Ollama
    workdir/gguf-f32/NAME-F32.gguf  lossless export llama.cpp's quantizer reads for the K-quants (not published)
    workdir/output/int8/, int4/     torchao weight-only checkpoints: from_pretrained(repo, subfolder="int8")
    workdir/output/quality.json     the quality report the card shows, machine-readable
    workdir/output/README.md        card: base_model + base_model_relation: quantized, the report
    workdir/output/provenance.json

How each variant is measured (`commons.ml.quantize_eval`): perplexity on held-out text and next-token
agreement with the source, both in transformers on CPU. A GGUF is read back with `gguf`, dequantized
to float32 and loaded into the source architecture, so its figures measure the *quantization error*
of the file, not llama.cpp's kernels (which also round activations to 8 bits for Q8_0/Q4_0 dot
products). Its tokens/s is measured only when llama-cpp-python is installed.

F16, Q8_0 and Q4_0 are written by `commons.ml.gguf_export` (byte for byte what llama.cpp's own quantizer
writes from the same weights: docs/quantization.md); the K-quants by llama.cpp itself
(`commons.ml.gguf_llamacpp`), from our F32 export, so they need llama-cpp-python.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commons.ml import gguf_llamacpp, quant_card, quantize_eval, quantize_torchao
from commons.ml.checks import InputError
from commons.ml.events import Reporter
from commons.ml.provenance import hardware, write_provenance
from commons.ml.specs import QuantizeSpec

GGUF_VARIANTS = ("F16", "Q8_0", "Q4_0")  # written by commons.ml.gguf_export
LLAMA_CPP_VARIANTS = gguf_llamacpp.K_QUANTS  # written by llama.cpp's quantizer from our F32 export
QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class VariantReport:
    """One row of the quality report."""

    variant: str
    format: str  # "gguf" or "torchao"
    path: str  # file or folder inside the repo
    size_bytes: int
    perplexity: float
    perplexity_change_pct: float
    agreement: float  # 0..1
    tokens_per_s: float | None  # None: no runtime for this format on the machine that ran the job
    speed_engine: str | None
    detail: str  # tensor types, group size


def run_quantize(spec: QuantizeSpec, workdir: Path, reporter: Reporter, job: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Write and measure every variant of `spec.recipe.variants`; returns the metrics. Raises InputError."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    recipe = spec.recipe
    base_dir, out = workdir / "inputs" / "base", workdir / "output"
    if recipe.num_threads:
        torch.set_num_threads(recipe.num_threads)
    torch.manual_seed(0)

    # 1) check what does not need the weights
    reporter.phase("check")
    config = _check_source(base_dir, spec)
    wants_gguf = [v for v in recipe.variants if v in GGUF_VARIANTS + LLAMA_CPP_VARIANTS]
    wants_llama_cpp = [v for v in recipe.variants if v in LLAMA_CPP_VARIANTS]
    if wants_llama_cpp and not gguf_llamacpp.available():  # the spec check, again where the job runs
        raise InputError(f"{', '.join(wants_llama_cpp)} need llama.cpp's quantizer: the {gguf_llamacpp.PACKAGE} "
                         "package is not installed on the machine running the job")
    if wants_gguf:
        _check_gguf_exportable(base_dir, spec.base.repo_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
    except (OSError, ValueError) as exc:
        raise InputError(f"base model {spec.base.repo_id} has no usable tokenizer: {exc}") from None
    ids = quantize_eval.held_out_ids(tokenizer, recipe.eval_tokens)
    window = min(recipe.eval_window, int(getattr(config, "max_position_embeddings", recipe.eval_window)))
    prompt = quantize_eval.prompt_ids(tokenizer)

    # 2) the source: the reference every variant is compared with
    reporter.phase("load")
    source: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, use_safetensors=True)
    source.eval()
    n_params = sum(p.numel() for p in source.parameters())
    reporter.log(f"source {spec.base.label}: {n_params / 1e6:.1f} M parameters; scoring {ids.numel()} held-out "
                 f"tokens in windows of {window}")
    reference = quantize_eval.score(source, ids, window)
    source_speed = quantize_eval.decode_tokens_per_s(source, prompt, recipe.decode_tokens)
    source_size = sum(p.stat().st_size for p in base_dir.glob("*.safetensors"))
    reporter.metric("source_perplexity", reference.perplexity)

    # 3) each variant: write, read back, measure
    reporter.phase("quantize")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[VariantReport] = []
    scratch = workdir / "gguf-f32"
    try:
        for step, variant in enumerate(recipe.variants, start=1):
            reporter.log(f"{variant}: writing")
            if variant in GGUF_VARIANTS or variant in LLAMA_CPP_VARIANTS:
                row = _gguf_variant(variant, base_dir, out, scratch, spec.base.repo_id, source, ids, window,
                                    reference, prompt, recipe)
            else:
                row = _torchao_variant(variant, base_dir, out, source, ids, window, reference, prompt, recipe)
            rows.append(row)
            speed = f"{row.tokens_per_s:.1f} tok/s" if row.tokens_per_s is not None else "no runtime"
            reporter.log(f"{variant}: {row.size_bytes / 1e6:.1f} MB, perplexity {row.perplexity:.3f} "
                         f"({row.perplexity_change_pct:+.2f} %), agreement {100 * row.agreement:.1f} %, {speed}")
            reporter.progress(step, len(recipe.variants), perplexity=round(row.perplexity, 4))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # 4) report, card, provenance
    reporter.phase("save")
    hw = hardware("cpu")
    report = {
        "held_out": {"text": "Python language reference (pydoc_data.topics, sorted)", "tokens": int(ids.numel()),
                     "scored_tokens": reference.count, "window": window},
        "source": {"repo_id": spec.base.repo_id, "revision": spec.base.revision, "size_bytes": source_size,
                   "perplexity": reference.perplexity, "tokens_per_s": source_speed, "dtype": "float32",
                   "n_params": n_params},
        "variants": [asdict(r) for r in rows],
        "machine": {"cpu": hw["cpu"], "threads": hw["torch_threads"], "decode_tokens": recipe.decode_tokens},
    }
    (out / QUALITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (out / "README.md").write_text(quant_card.model_card(spec, report, quant_card.base_license(base_dir)))
    metrics: dict[str, Any] = {"source_perplexity": reference.perplexity, "variants": len(rows)}
    for r in rows:
        metrics[f"{r.variant}_perplexity"] = r.perplexity
        metrics[f"{r.variant}_agreement"] = r.agreement
        metrics[f"{r.variant}_size_bytes"] = r.size_bytes
    record = write_provenance(out, {
        "tool": "commons quantize",
        "job": job or {},
        "spec": spec.to_json(),
        "inputs": {"base": {"repo_id": spec.base.repo_id, "revision": spec.base.revision}},
        "seed": 0,
        "deterministic": True,
        "hardware": hw,
        "started_at": started_at.isoformat(),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "metrics": metrics,
        "quality": report,
    })
    return {"metrics": metrics, "timing": {"wall_time_s": round(time.perf_counter() - t0, 3)},
            "outputs": record["outputs"]}


def _check_source(base_dir: Path, spec: QuantizeSpec) -> Any:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(base_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"base model {spec.base.repo_id} has no usable config.json: {exc}") from None
    if MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(getattr(config, "model_type", "") or "") is None:
        raise InputError(f"base model {spec.base.repo_id} ({config.model_type}) is not a causal language model")
    if getattr(config, "quantization_config", None):
        raise InputError(f"base model {spec.base.repo_id} is already quantized; quantize a float checkpoint")
    if not any(base_dir.glob("*.safetensors")):
        raise InputError(f"base model {spec.base.repo_id} has no .safetensors weights")
    return config


def _check_gguf_exportable(base_dir: Path, repo_id: str) -> None:
    """Architecture and tokenizer problems surface before any weight is read."""
    from commons.ml.gguf_export import GgufExportError, check_exportable

    try:
        check_exportable(base_dir)
    except GgufExportError as exc:
        raise InputError(f"{repo_id} cannot be exported to GGUF: {exc} (drop the GGUF variants to make "
                         "only the torchao ones)") from None


def _gguf_variant(variant: str, base_dir: Path, out: Path, scratch: Path, repo_id: str, source: Any, ids: Any,
                  window: int, reference: quantize_eval.Scores, prompt: Any, recipe: Any) -> VariantReport:
    from commons.ml.gguf_export import export_gguf

    name = repo_id.split("/")[-1]
    filename = f"{name}-{variant}.gguf"
    if variant in LLAMA_CPP_VARIANTS:
        lossless = scratch / f"{name}-F32.gguf"  # written once, shared by the K-quants of this job
        if not lossless.is_file():
            export_gguf(base_dir, lossless, "F32", name=name, source_repo=repo_id)
        tensor_types = gguf_llamacpp.quantize(lossless, out / filename, variant, threads=recipe.num_threads
                                              ).tensor_types
        how = "; quantized by llama.cpp (llama_model_quantize) from a lossless F32 export"
    else:
        tensor_types, how = export_gguf(base_dir, out / filename, variant, name=name, source_repo=repo_id
                                        ).tensor_types, ""
    size = (out / filename).stat().st_size
    model = gguf_as_torch(out / filename, source)
    scores = quantize_eval.score(model, ids, window)
    del model
    speed, engine = None, None
    if quantize_eval.llama_cpp_available():
        speed = quantize_eval.llama_cpp_tokens_per_s(str(out / filename), prompt[0].tolist(), recipe.decode_tokens,
                                                     recipe.num_threads)
        engine = "llama-cpp-python"
    types = ", ".join(f"{k} ({v})" for k, v in sorted(tensor_types.items(), key=lambda kv: -kv[1]))
    return VariantReport(variant, "gguf", filename, size, scores.perplexity,
                         _change(scores.perplexity, reference.perplexity), scores.agreement(reference), speed,
                         engine, f"tensor types: {types}{how}")


def gguf_as_torch(path: Path, source: Any) -> Any:
    """The GGUF's tensors dequantized (gguf.quants) into a copy of the source model, for scoring in torch."""
    import torch
    from gguf import GGUFReader

    from commons.ml.gguf_convert import _convert_tensors, _llama_config, _read_metadata

    reader = GGUFReader(path)
    config = _llama_config(_read_metadata(reader), {t.name: t for t in reader.tensors})
    state = {k: torch.from_numpy(v) for k, v in _convert_tensors(reader.tensors, config, None).items()}
    model = copy.deepcopy(source)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not (m == "lm_head.weight" and config["tie_word_embeddings"])]:
        raise RuntimeError(f"GGUF read-back does not match the source model: missing {missing}, extra {unexpected}")
    if config["tie_word_embeddings"]:
        model.tie_weights()
    return model.eval()


def _torchao_variant(variant: str, base_dir: Path, out: Path, source: Any, ids: Any, window: int,
                     reference: quantize_eval.Scores, prompt: Any, recipe: Any) -> VariantReport:
    bits = 8 if variant == "int8" else 4
    try:
        group = quantize_torchao.pick_group_size(quantize_torchao.linear_inputs(source), recipe.group_size, bits)
    except ValueError as exc:
        raise InputError(f"{variant}: {exc}") from None
    quantize_torchao.write_variant(base_dir, out / variant, bits, group)
    model = quantize_torchao.load_variant(out / variant)  # measure what a user will load, not the in-memory copy
    scores = quantize_eval.score(model, ids, window)
    speed = quantize_eval.decode_tokens_per_s(model, prompt, recipe.decode_tokens)
    del model
    size = sum(p.stat().st_size for p in (out / variant).glob("*.safetensors"))
    storage = "one byte per weight" if bits == 4 else "int8"
    return VariantReport(variant, "torchao", f"{variant}/", size, scores.perplexity,
                         _change(scores.perplexity, reference.perplexity), scores.agreement(reference), speed,
                         "transformers + torchao", f"int{bits} weight-only, symmetric, group {group} ({storage}); "
                         "embeddings and lm_head float32")


def _change(value: float, reference: float) -> float:
    return 100.0 * (value - reference) / reference
