"""Pre-training checks and data formatting, on tiny models in a temp directory (no child process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from commons.ml.checks import (
    GIB,
    InputError,
    check_causal_lm,
    check_memory,
    check_sequence_length,
    estimate_memory,
    lora_parameters,
    read_weights_info,
)
from commons.ml.data import IGNORE, encode, load_splits
from commons.ml.lora import lr_at, total_steps
from commons.ml.specs import LoraRecipe

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.jobs.tiny import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("llama"))


def test_causal_lm_check(llama: Path, tmp_path: Path) -> None:
    from tests.jobs.tiny import tiny_bert

    check_causal_lm(transformers.AutoConfig.from_pretrained(llama), "alice/tiny")
    bert = transformers.AutoConfig.from_pretrained(tiny_bert(tmp_path / "bert"))
    with pytest.raises(InputError, match=r"BertModel .bert., not a causal language model"):
        check_causal_lm(bert, "alice/bert")


def test_weights_info_and_lora_size(llama: Path) -> None:
    info = read_weights_info(llama, "alice/tiny")
    assert info.n_params == 20640  # counted from the safetensors header alone
    # q_proj: 32 -> 32, v_proj: 32 -> 16 (2 KV heads of 8), two layers, rank 8
    assert lora_parameters(info, LoraRecipe(), "alice/tiny") == 2 * 8 * ((32 + 32) + (16 + 32))
    with pytest.raises(InputError, match=r"\['c_attn'\] are not layers of alice/tiny; its linear layers are: "
                                         r"down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"):
        lora_parameters(info, LoraRecipe(target_modules=("q_proj", "c_attn")), "alice/tiny")


def test_no_safetensors_no_training(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no .safetensors weights"):
        read_weights_info(tmp_path, "alice/empty")


def test_memory_and_sequence_checks(llama: Path) -> None:
    config = transformers.AutoConfig.from_pretrained(llama)
    info = read_weights_info(llama, "alice/tiny")
    small = estimate_memory(config, info, 1000, LoraRecipe())
    check_memory(small, 4 * GIB, "cpu")
    huge = estimate_memory(config, info, 1000, LoraRecipe(batch_size=1_000_000, max_seq_len=64))
    with pytest.raises(InputError, match=r"needs about .* GiB on cpu .*activations.* but only 4.0 GiB"):
        check_memory(huge, 4 * GIB, "cpu")
    with pytest.raises(InputError, match=r"max_seq_len 128 exceeds what alice/tiny supports .64 positions."):
        check_sequence_length(config, LoraRecipe(max_seq_len=128), "alice/tiny")


def test_chat_examples_mask_the_prompt(llama: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(llama)
    recipe = LoraRecipe(prompt_format="chat")
    (example,) = encode([{"instruction": "repeat red dog", "response": "red dog"}], tokenizer, recipe)
    response = tokenizer("red dog", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert example.input_ids[-len(response):] == response
    assert example.labels[-len(response):] == response
    assert set(example.labels[:-len(response)]) == {IGNORE}
    (plain,) = encode([{"text": "hello world"}], tokenizer, LoraRecipe(max_seq_len=2))
    assert len(plain.input_ids) == 2 and plain.labels == plain.input_ids


def test_missing_split_and_columns(tmp_path: Path) -> None:
    from tests.jobs.tiny import tiny_dataset

    data = tiny_dataset(tmp_path / "d")
    rows = load_splits(data, LoraRecipe(prompt_format="chat", eval_split="test"), "alice/d", tmp_path / "cache")
    assert len(rows["train"]) == 48 and len(rows["test"]) == 16
    with pytest.raises(InputError, match="has no split 'validation'; its splits are: train, test"):
        load_splits(data, LoraRecipe(prompt_format="chat", eval_split="validation"), "alice/d", tmp_path / "c2")
    with pytest.raises(InputError, match=r"has no column.s. 'text' named by the recipe .plain format."):
        load_splits(data, LoraRecipe(), "alice/d", tmp_path / "c3")


def test_schedule_and_step_count() -> None:
    recipe = LoraRecipe(learning_rate=1.0, warmup_steps=2, schedule="cosine")
    rates = [lr_at(s, 10, recipe) for s in range(10)]
    assert rates[0] < rates[1] < rates[2] == 1.0 and rates[-1] < 0.05
    assert lr_at(5, 10, LoraRecipe(learning_rate=1.0, schedule="linear")) == 0.5
    assert total_steps(100, LoraRecipe(batch_size=8, grad_accumulation=2, epochs=2)) == 13
    assert total_steps(100, LoraRecipe(max_steps=7)) == 7
