"""Hardware fit on the live hub: headers of known files read from the blob store, quantized children found by
their cards, the `commons fit` command, the API (with visibility), and the card page's panel."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.hubserver import HubServer, new_home

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

LAYERS, HIDDEN, FFN, HEADS, KV_HEADS, VOCAB, CONTEXT = 2, 64, 128, 4, 2, 256, 512
# Parameters of that Llama with untied embeddings: embed + lm_head + norms + per layer (q, k, v, o, 3 MLP, 2 norms).
PER_LAYER = HIDDEN * HIDDEN * 2 + HIDDEN * 32 * 2 + 3 * HIDDEN * FFN + 2 * HIDDEN
N_PARAMS = 2 * VOCAB * HIDDEN + HIDDEN + LAYERS * PER_LAYER


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    kv = HIDDEN // HEADS * KV_HEADS
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "lm_head.weight": (VOCAB, HIDDEN),
              "model.norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (HIDDEN, HIDDEN), p + "self_attn.k_proj.weight": (kv, HIDDEN),
                   p + "self_attn.v_proj.weight": (kv, HIDDEN), p + "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
                   p + "mlp.gate_proj.weight": (FFN, HIDDEN), p + "mlp.up_proj.weight": (FFN, HIDDEN),
                   p + "mlp.down_proj.weight": (HIDDEN, FFN), p + "input_layernorm.weight": (HIDDEN,),
                   p + "post_attention_layernorm.weight": (HIDDEN,)}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def write_base(folder: Path) -> Path:
    """A float32 Llama checkpoint whose header we know: N_PARAMS x 4 bytes of weights."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file(_tensors(), str(folder / "model.safetensors"))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB,
              "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "max_position_embeddings": CONTEXT}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# base\n")
    return folder


def write_q8_child(folder: Path, base: str) -> Path:
    """A Q8_0 GGUF of the same shapes (norms F32), and a card naming `base` as what it quantizes."""
    from gguf.quants import quantize

    folder.mkdir(parents=True)
    writer = gguf.GGUFWriter(str(folder / "model-Q8_0.gguf"), "llama")
    for key, value in (("block_count", LAYERS), ("embedding_length", HIDDEN), ("feed_forward_length", FFN),
                       ("attention.head_count", HEADS), ("attention.head_count_kv", KV_HEADS),
                       ("context_length", CONTEXT)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_file_type(7)
    for name, array in _tensors().items():  # names do not matter for sizing; shapes and types do
        if array.ndim == 1:
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, quantize(array, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (folder / "README.md").write_text(f"---\nbase_model: {base}\nbase_model_relation: quantized\n---\n# q\n")
    return folder


@dataclass
class Repos:
    base: str
    child: str
    private_child: str


@pytest.fixture(scope="module")
def repos(hub: HubServer) -> Iterator[Repos]:
    root = new_home("commons-fit-")
    suffix = uuid.uuid4().hex[:8]
    names = Repos(f"alice/fit-{suffix}", f"alice/fit-{suffix}-q8", f"alice/fit-{suffix}-secret")
    api = hub.api("alice")
    api.create_repo(names.base)
    api.upload_folder(folder_path=write_base(root / "base"), repo_id=names.base)
    api.create_repo(names.child)
    api.upload_folder(folder_path=write_q8_child(root / "child", names.base), repo_id=names.child)
    api.create_repo(names.private_child, private=True)
    api.upload_folder(folder_path=write_q8_child(root / "secret", names.base), repo_id=names.private_child)
    yield names


def _get(hub: HubServer, path: str, token: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{hub.url}{path}", params=params, headers=headers, timeout=30)


def test_api_reads_known_headers_and_finds_children(hub: HubServer, repos: Repos) -> None:
    response = _get(hub, f"/api/commons/fit/models/{repos.base}", hub.alice_token, ram="1G", context="256")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["n_params"] == N_PARAMS
    assert report["shape"] == {"layers": LAYERS, "kv_heads": KV_HEADS, "head_dim": HIDDEN // HEADS,
                               "max_context": CONTEXT}
    rows = {(v["repo_id"], v["path"]): v for v in report["variants"]}
    assert set(rows) == {(repos.base, ""), (repos.child, "model-Q8_0.gguf"), (repos.private_child, "model-Q8_0.gguf")}
    base = rows[(repos.base, "")]
    assert base["precision"] == "float32" and base["engine"] == "transformers"
    assert base["weight_bytes"] == 4 * N_PARAMS
    assert base["kv_cache_bytes"] == 2 * LAYERS * KV_HEADS * (HIDDEN // HEADS) * 4 * 256  # fp32 KV
    q8 = rows[(repos.child, "model-Q8_0.gguf")]
    n_matrix = N_PARAMS - HIDDEN - 2 * LAYERS * HIDDEN
    assert q8["precision"] == "Q8_0" and q8["engine"] == "llama.cpp" and q8["n_params"] == N_PARAMS
    assert q8["weight_bytes"] == n_matrix // 32 * 34 + 4 * (N_PARAMS - n_matrix)
    assert q8["kv_cache_bytes"] == 2 * LAYERS * KV_HEADS * (HIDDEN // HEADS) * 2 * 256  # f16 KV
    assert all(v["fits"] and v["decode_tokens_per_s"] > 0 for v in report["variants"])
    assert report["precisions"]["float32"] == 4 * N_PARAMS


def test_api_hides_private_children_and_refuses_bad_input(hub: HubServer, repos: Repos) -> None:
    anonymous = _get(hub, f"/api/commons/fit/models/{repos.base}").json()
    assert {v["repo_id"] for v in anonymous["variants"]} == {repos.base, repos.child}
    tiny = _get(hub, f"/api/commons/fit/models/{repos.base}", ram="100M").json()
    assert not any(v["fits"] for v in tiny["variants"])  # runtime overhead alone is 128 MiB
    bad = _get(hub, f"/api/commons/fit/models/{repos.base}", ram="lots")
    assert bad.status_code == 400 and "not a size" in bad.text
    hidden = _get(hub, f"/api/commons/fit/models/{repos.private_child}")  # as the Hub: 401 + RepoNotFound
    assert hidden.status_code == 401 and hidden.headers["X-Error-Code"] == "RepoNotFound"


def test_cli_answers_which_variants_run(hub: HubServer, repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from commons.cli import app

    monkeypatch.setenv("COMMONS_HOME", str(hub.home))
    if hub.database_url:
        monkeypatch.setenv("COMMONS_DATABASE_URL", hub.database_url)
    runner = CliRunner()
    out = runner.invoke(app, ["fit", repos.base, "--ram", "8G", "--bandwidth", "20GB/s", "--context", "256"])
    assert out.exit_code == 0, out.output
    assert f"{N_PARAMS / 1e6:,.1f} M parameters" in out.output and "20.0 GB/s" in out.output
    assert "3 of 3 variants fit in 8.0 GiB" in out.output
    assert f"{repos.child}/model-Q8_0.gguf" in out.output and "Q8_0" in out.output and "llama.cpp" in out.output
    small = runner.invoke(app, ["fit", repos.base, "--ram", "200M", "--no-children", "--json"])
    assert small.exit_code == 0, small.output
    data = json.loads(small.output)
    assert [v["fits"] for v in data["variants"]] == [False]  # 0.3 MB of weights + 384 MiB of runtime
    assert data["machine"]["bandwidth_bytes_per_s"] == 15.5e9
    missing = runner.invoke(app, ["fit", "alice/nope", "--ram", "8G"])
    assert missing.exit_code == 2 and "nope" in missing.output
    bad = runner.invoke(app, ["fit", repos.base, "--ram", "eight"])
    assert bad.exit_code != 0 and "not a size" in bad.output


def test_card_page_shows_the_panel(hub: HubServer, repos: Repos) -> None:
    page = _get(hub, f"/{repos.base}")
    assert page.status_code == 200
    assert "Hardware fit" in page.text and "Q8_0" in page.text and "fits" in page.text
    assert repos.private_child.split("/")[1] not in page.text  # anonymous: the private child stays hidden
    gguf_only = _get(hub, f"/{repos.child}")
    assert "Hardware fit" in gguf_only.text  # a GGUF-only repo has its own variant
