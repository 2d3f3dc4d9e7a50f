"""The weights inspector and the scan verdicts on file pages: header-only reads, live pages."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from commons.hub.weights import WeightsError, inspect_weights
from tests.hubserver import HubServer
from tests.web.conftest import Web


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None = None,
                      data: bool = True) -> bytes:
    """A valid safetensors file (zero data) with the given {name: (dtype, shape)}."""
    bits = {"F32": 32, "F16": 16, "BF16": 16, "I8": 8}
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = bits[dtype] // 8
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + (b"\0" * offset if data else b"")


def gguf_bytes(context: int = 4096, template: bool = True) -> bytes:
    """A small valid GGUF v3: llama metadata, a tokenizer, two tensors (F32 and Q8_0)."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = [
        s("general.architecture") + struct.pack("<I", 8) + s("llama"),
        s("general.name") + struct.pack("<I", 8) + s("Tiny Llama"),
        s("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", context),
        s("llama.block_count") + struct.pack("<I", 4) + struct.pack("<I", 2),
        s("tokenizer.ggml.model") + struct.pack("<I", 8) + s("llama"),
        s("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<IQ", 8, 3) + s("<s>") + s("</s>") + s("a"),
    ]
    if template:
        kv.append(s("tokenizer.chat_template") + struct.pack("<I", 8) + s("{{ messages[0].content }}"))
    tensors = [("token_embd.weight", (32, 3), 0, 32 * 3 * 4), ("blk.0.attn_q.weight", (32, 32), 8, 34 * 32)]
    infos = b""
    offset = 0
    for name, dims, ggml_type, size in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", ggml_type, offset)
        offset += size + (-size % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + infos
    head += b"\0" * (-len(head) % 32)
    return head + b"\0" * offset


# ------------------------------------------------------------------ header-only reads
def test_a_2gb_safetensors_file_is_summarised_from_its_header(tmp_path: Path) -> None:
    tensors = {f"model.layers.{i}.mlp.weight": ("BF16", [8192, 8192]) for i in range(16)}
    tensors["lm_head.weight"] = ("F32", [1024, 1024])
    head = safetensors_bytes(tensors, {"format": "pt"}, data=False)
    size = len(head) + 16 * 8192 * 8192 * 2 + 1024 * 1024 * 4
    path = tmp_path / "big.safetensors"
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)  # sparse: the data is never written, and must never be read
    with path.open("rb") as fh:
        summary = inspect_weights("big.safetensors", fh, size)
    assert size > 2 * 10**9
    assert summary.parameter_count == 16 * 8192 * 8192 + 1024 * 1024
    assert summary.by_dtype[0][:3] == ("BF16", 16, 16 * 8192 * 8192)
    assert summary.metadata == {"format": "pt"}
    assert summary.bytes_read < 200_000, summary.bytes_read


def test_gguf_facts_and_quant_types() -> None:
    import io

    data = gguf_bytes()
    summary = inspect_weights("m.gguf", io.BytesIO(data), len(data))
    assert summary.format == "gguf" and summary.gguf is not None
    g = summary.gguf
    assert (g.architecture, g.name, g.context_length, g.block_count) == ("llama", "Tiny Llama", 4096, 2)
    assert (g.tokenizer, g.vocab_size, g.chat_template) == ("llama", 3, True)
    assert {t.name: t.dtype for t in summary.tensors} == {"token_embd.weight": "F32", "blk.0.attn_q.weight": "Q8_0"}
    assert summary.parameter_count == 32 * 3 + 32 * 32


def test_a_truncated_header_is_an_error_not_a_crash() -> None:
    import io

    data = safetensors_bytes({"w": ("F32", [4])})[:20]
    with pytest.raises(WeightsError):
        inspect_weights("w.safetensors", io.BytesIO(data), len(data))


def test_a_huge_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", 90 << 20) + b"{")
        fh.truncate(100 << 20)
    with path.open("rb") as fh, pytest.raises(WeightsError, match="at most"):
        inspect_weights("huge.safetensors", fh, 100 << 20)


# ------------------------------------------------------------------ live pages
@pytest.fixture(scope="module")
def weights_repo(hub: HubServer) -> str:
    from huggingface_hub import CommitOperationAdd

    api = hub.api("alice")
    repo_id = "alice/inspect-weights"
    api.create_repo(repo_id, exist_ok=True)
    many = {f"layers.{i:03d}.weight": ("F16", [4, 8]) for i in range(150)}
    shard1 = safetensors_bytes({"a.weight": ("F32", [2, 3])})
    shard2 = safetensors_bytes({"b.weight": ("BF16", [5])})
    index = {"metadata": {"total_size": 24 + 10}, "weight_map": {
        "a.weight": "model-00001-of-00003.safetensors", "b.weight": "model-00002-of-00003.safetensors",
        "c.weight": "model-00003-of-00003.safetensors"}}
    bad_pickle = b"\x80\x04cposix\nsystem\n(S'echo hi'\ntR."
    api.create_commit(repo_id, [
        CommitOperationAdd("model.safetensors", safetensors_bytes(many, {"format": "pt"})),
        CommitOperationAdd("model-00001-of-00003.safetensors", shard1),
        CommitOperationAdd("model-00002-of-00003.safetensors", shard2),
        CommitOperationAdd("model.safetensors.index.json", json.dumps(index).encode()),
        CommitOperationAdd("tiny.gguf", gguf_bytes()),
        CommitOperationAdd("broken.safetensors", b"\xff" * 16),
        CommitOperationAdd("pytorch_model.bin", bad_pickle),
    ], commit_message="weights")
    assert pickle.DEFAULT_PROTOCOL  # the payload above is a pickle that would call os.system
    return repo_id


def test_safetensors_page_lists_tensors_with_paging_and_filter(anon: Web, weights_repo: str) -> None:
    page = anon.get(f"/{weights_repo}/blob/main/model.safetensors")
    assert page.status_code == 200
    html = page.text
    assert "safetensors · 4,800 parameters" in html
    assert "layers.000.weight" in html and "layers.099.weight" in html and "layers.100.weight" not in html
    assert "[4, 8]" in html and "F16" in html
    assert "Tensors 1\u2013100 of 150" in html
    second = anon.get(f"/{weights_repo}/blob/main/model.safetensors", params={"offset": 100}).text
    assert "layers.100.weight" in second and "layers.149.weight" in second and "layers.099.weight" not in second
    filtered = anon.get(f"/{weights_repo}/blob/main/model.safetensors", params={"tensor": "layers.12"}).text
    assert "layers.120.weight" in filtered and "layers.013.weight" not in filtered
    assert "scanned" in html.lower()


def test_sharded_index_summarises_every_shard(anon: Web, weights_repo: str) -> None:
    html = anon.get(f"/{weights_repo}/blob/main/model.safetensors.index.json").text
    assert "sharded safetensors · 11 parameters" in html
    assert "model-00001-of-00003.safetensors" in html and "missing" in html
    assert "a.weight" in html and "b.weight" in html


def test_gguf_page_shows_model_facts(anon: Web, weights_repo: str) -> None:
    html = anon.get(f"/{weights_repo}/blob/main/tiny.gguf").text
    assert "GGUF · 1,120 parameters" in html
    for fact in ("llama", "Tiny Llama", "4,096", "present", "Q8_0"):
        assert fact in html, fact


def test_broken_header_is_reported_on_the_page(anon: Web, weights_repo: str) -> None:
    page = anon.get(f"/{weights_repo}/blob/main/broken.safetensors")
    assert page.status_code == 200
    assert "Could not read this file's header" in page.text


def test_scan_verdicts_in_the_file_list_and_on_the_file_page(anon: Web, weights_repo: str) -> None:
    tree = anon.get(f"/{weights_repo}/tree/main").text
    row = tree[tree.index("pytorch_model.bin"):][:1500]
    assert "quarantined" in row
    page = anon.get(f"/{weights_repo}/blob/main/pytorch_model.bin").text
    assert "Scanned: unsafe" in page and "Quarantined" in page
    assert "posix.system" in page
