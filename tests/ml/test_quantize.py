"""The quantize job end to end on the live hub: upload a tiny Llama with huggingface_hub, run the job in a
worker (real child process), then read the new repo back through HF_ENDPOINT: card, provenance, quality
report, GGUF files, and the torchao int8/int4 variants loaded with `from_pretrained` and generating."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from commons.config import Settings
from commons.jobs.service import Jobs
from commons.jobs.worker import Worker
from commons.services import Services, build_services
from tests.hubserver import HubServer, new_home
from tests.jobs.conftest import fast_options
from tests.jobs.helpers import job_row, repo_exists
from tests.jobs.local import user_actor

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")
pytest.importorskip("gguf")

VARIANTS = ["F16", "Q8_0", "Q4_0", "int8", "int4"]
# A K-quant too where llama.cpp's quantizer is installed (CI): the job hands our F32 export to it.
HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
JOB_VARIANTS = VARIANTS + (["Q4_K_M"] if HAS_LLAMA_CPP else [])


@dataclass
class Quantized:
    services: Services
    job: Any
    base: str
    output: str
    source_dir: Path


def _submit(services: Services, spec: dict[str, Any]) -> int:
    actor = user_actor(services, "alice")
    with services.session() as session:
        return Jobs(session, services.storage).submit(actor, "quantize", spec).id


@pytest.fixture(scope="module")
def quantized(hub: HubServer) -> Iterator[Quantized]:
    from tests.ml.tiny_bpe import tiny_bpe_llama

    root = new_home("commons-quantize-")
    suffix = uuid.uuid4().hex[:8]
    base, output = f"alice/qbase-{suffix}", f"alice/qbase-{suffix}-quantized"
    api = hub.api("alice")
    api.create_repo(base)
    source_dir = tiny_bpe_llama(root / "m")
    api.upload_folder(folder_path=source_dir, repo_id=base)
    services = build_services(Settings(home=hub.home, database_url=hub.database_url))
    job_id = _submit(services, {"base": {"repo_id": base}, "output_repo": output,
                                "recipe": {"variants": JOB_VARIANTS, "eval_tokens": 384, "eval_window": 128,
                                           "decode_tokens": 4, "num_threads": 1}})
    Worker(services, fast_options(work_root=root / "work")).run_once()
    yield Quantized(services, job_row(services, job_id), base, output, source_dir)
    services.close()
    shutil.rmtree(root, ignore_errors=True)


def _download(hub: HubServer, repo: str, path: str) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, path, token=hub.alice_token))


def test_job_publishes_every_variant_with_card_and_provenance(quantized: Quantized, hub: HubServer) -> None:
    from huggingface_hub import ModelCard

    from commons.ml.provenance import sha256_file

    job = quantized.job
    assert job.state == "succeeded", job.error
    files = set(hub.api("alice").list_repo_files(quantized.output))
    name = quantized.base.split("/")[1]
    assert {f"{name}-F16.gguf", f"{name}-Q8_0.gguf", f"{name}-Q4_0.gguf", "int8/config.json",
            "int8/model.safetensors", "int4/model.safetensors", "int4/tokenizer.json", "README.md",
            "quality.json", "provenance.json"} <= files
    card = ModelCard.load(quantized.output, token=hub.alice_token)
    assert card.data.base_model == quantized.base and card.data.base_model_relation == "quantized"
    assert card.data.license == "apache-2.0"
    assert "| Q4_0 |" in card.text and "quantization error of the file" in card.text
    provenance = json.loads(_download(hub, quantized.output, "provenance.json").read_text())
    assert provenance["inputs"]["base"]["revision"] == job.spec["base"]["revision"]
    assert set(provenance["outputs"]) == files - {"provenance.json", ".gitattributes", "NOTICE"}  # NOTICE: the hub's
    for path in ("quality.json", f"{name}-Q4_0.gguf", "int4/model.safetensors"):
        assert sha256_file(_download(hub, quantized.output, path)) == provenance["outputs"][path]["sha256"]


def test_quality_report_orders_the_variants(quantized: Quantized, hub: HubServer) -> None:
    """More bits, less damage: F16 is near-lossless, Q8_0/int8 close, the 4-bit variants cost the most.

    The tiny model has random weights (perplexity ~1,400 on a 384-token vocabulary), which 4-bit rounding
    hurts far more than it hurts a trained model: the bounds here are for ordering, not for quality."""
    report = json.loads(_download(hub, quantized.output, "quality.json").read_text())
    rows = {r["variant"]: r for r in report["variants"]}
    assert list(rows) == JOB_VARIANTS
    assert report["held_out"]["scored_tokens"] > 300 and report["source"]["tokens_per_s"] > 0
    assert abs(rows["F16"]["perplexity_change_pct"]) < 0.1 and rows["F16"]["agreement"] > 0.99
    for variant in ("Q8_0", "int8"):
        assert abs(rows[variant]["perplexity_change_pct"]) < 1.5 and rows[variant]["agreement"] > 0.9, variant
    for variant in ("Q4_0", "int4"):  # chance agreement would be 1/384
        assert 0.3 < rows[variant]["agreement"] < min(rows["Q8_0"]["agreement"], rows["int8"]["agreement"]), variant
    sizes = {v: rows[v]["size_bytes"] for v in rows}
    assert sizes["Q4_0"] < sizes["Q8_0"] < sizes["F16"]
    assert rows["int8"]["tokens_per_s"] > 0 and rows["int4"]["tokens_per_s"] > 0
    assert "group 64" in rows["int8"]["detail"] and "group 32" in rows["int4"]["detail"]


@pytest.mark.parametrize(("variant", "tolerance"), [("int8", 0.1), ("int4", 2.0)])
def test_torchao_variants_load_through_hf_endpoint_and_generate(quantized: Quantized, hub: HubServer,
                                                                variant: str, tolerance: float) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(quantized.output, subfolder=variant, token=hub.alice_token).eval()
    tokenizer = AutoTokenizer.from_pretrained(quantized.output, subfolder=variant, token=hub.alice_token)
    weight = model.model.layers[0].mlp.down_proj.weight
    assert type(weight).__module__.startswith("torchao"), type(weight)  # really quantized, not float
    assert type(model.lm_head.weight).__name__ == "Parameter"  # the output matrix stays float
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    source = AutoModelForCausalLM.from_pretrained(quantized.source_dir).eval()
    with torch.no_grad():
        # max |difference| relative to the logits' spread; random weights suffer from int4 far more than trained ones
        want = source(ids).logits
        assert float((model(ids).logits - want).abs().max() / want.std()) < tolerance
        out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    assert out.shape[1] == ids.shape[1] + 6


def test_k_quant_variant_is_llama_cpp_s_and_loads(quantized: Quantized, hub: HubServer) -> None:
    """Q4_K_M: written by llama.cpp's quantizer, our metadata kept, measured like the others, loads in llama.cpp
    and chats with the template from its metadata. (This model's rows of 64/128 weights do not split into
    K-quant super-blocks of 256, so llama.cpp falls back to Q5_0/Q8_0 as llama-quantize does;
    tests/ml/test_gguf_export.py checks real K blocks on a wider model.)"""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: no K-quant variant")
    from gguf import GGUFReader

    name = quantized.base.split("/")[1]
    report = json.loads(_download(hub, quantized.output, "quality.json").read_text())
    row = {r["variant"]: r for r in report["variants"]}["Q4_K_M"]
    assert row["format"] == "gguf" and row["path"] == f"{name}-Q4_K_M.gguf"
    assert "quantized by llama.cpp" in row["detail"] and "Q5_0" in row["detail"]
    assert row["agreement"] > 0.3 and abs(row["perplexity_change_pct"]) < 50
    files = hub.api("alice").list_repo_files(quantized.output)
    assert not [f for f in files if "F32" in f]  # the lossless scratch export is not published
    path = _download(hub, quantized.output, row["path"])
    meta = {k: f.contents() for k, f in GGUFReader(path).fields.items()}
    assert meta["general.file_type"] == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert meta["general.source.repo_url"] == quantized.base
    assert meta["tokenizer.chat_template"] and meta["tokenizer.ggml.pre"] == "gpt-2"
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": "hi"}], max_tokens=4, temperature=0.0)
    assert reply["usage"]["completion_tokens"] >= 1
    llm.close()


def test_unexportable_model_fails_before_writing_anything(quantized: Quantized, hub: HubServer) -> None:
    """A WordLevel tokenizer has no GGUF equivalent: the job fails as bad input and leaves no repo."""
    from tests.jobs.tiny import tiny_llama

    root = new_home("commons-quantize-bad-")
    base, output = f"alice/wl-{uuid.uuid4().hex[:8]}", f"alice/wl-{uuid.uuid4().hex[:8]}-q"
    api = hub.api("alice")
    api.create_repo(base)
    api.upload_folder(folder_path=tiny_llama(root / "m"), repo_id=base)
    job_id = _submit(quantized.services, {"base": {"repo_id": base}, "output_repo": output,
                                          "recipe": {"variants": ["Q4_0"]}})
    Worker(quantized.services, fast_options(work_root=root / "work")).run_once()
    job = job_row(quantized.services, job_id)
    assert job.state == "failed" and "cannot be exported to GGUF" in (job.error or "")
    assert not repo_exists(quantized.services, output)
    shutil.rmtree(root, ignore_errors=True)


def test_spec_validation() -> None:
    from commons.ml.specs import QuantizeSpec, SpecError, parse_spec

    sha = "a" * 40
    spec = parse_spec("quantize", {"base": {"repo_id": "a/b", "revision": sha}, "output_repo": "a/c",
                                   "recipe": {"variants": "Q4_0, int8"}})
    assert isinstance(spec, QuantizeSpec) and spec.recipe.variants == ("Q4_0", "int8")
    assert QuantizeSpec.from_json(spec.to_json()) == spec
    for bad, message in (({"variants": ["Q5_K"]}, "unknown variant"), ({"variants": []}, "at least one"),
                         ({"group_size": 48}, "group_size"), ({"eval_tokens": 2}, "eval_tokens")):
        with pytest.raises(SpecError, match=message):
            parse_spec("quantize", {"base": {"repo_id": "a/b", "revision": sha}, "output_repo": "a/c", "recipe": bad})


def test_k_quants_are_refused_at_submission_without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    """No llama-cpp-python, no K-quant: the spec fails validation naming the package, before any job runs."""
    from commons.ml.specs import SpecError, parse_spec

    spec = {"base": {"repo_id": "a/b", "revision": "a" * 40}, "output_repo": "a/c",
            "recipe": {"variants": ["Q8_0", "Q4_K_M", "Q6_K"]}}
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what Python does for a package that is not there
    with pytest.raises(SpecError, match=r"Q4_K_M, Q6_K need llama\.cpp.s quantizer.*llama-cpp-python"):
        parse_spec("quantize", spec)
    parse_spec("quantize", {**spec, "recipe": {"variants": ["Q8_0", "Q4_0"]}})  # the rest needs nothing extra


def test_cli_queues_a_quantize_job_as_the_readme_shows(quantized: Quantized, hub: HubServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`commons jobs submit --kind quantize --base ... --output ... --set variants=...` pins the base and queues."""
    from typer.testing import CliRunner

    from commons.cli import app
    from commons.db.models import Job

    monkeypatch.setenv("COMMONS_HOME", str(hub.home))
    if hub.database_url:
        monkeypatch.setenv("COMMONS_DATABASE_URL", hub.database_url)
    output = f"{quantized.base}-cli"
    out = CliRunner().invoke(app, ["jobs", "submit", "--kind", "quantize", "--base", quantized.base, "--output", output,
                                   "--set", "variants=Q8_0,int8", "--set", "eval_tokens=64"])
    assert out.exit_code == 0, out.output
    job_id = int(out.output.split("job ")[1].split()[0])
    with quantized.services.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.kind == "quantize" and job.state == "queued"
        assert job.spec["base"]["revision"] == quantized.job.spec["base"]["revision"]  # "main" pinned to a sha
        assert job.spec["recipe"]["variants"] == ["Q8_0", "int8"]
        # Not run here (the job above covers running): cancelled, so no later worker in the session picks it up.
        Jobs(session, quantized.services.storage).cancel(user_actor(quantized.services, "alice"), job_id)
        session.commit()
        session.refresh(job)
        assert job.state == "cancelled"
