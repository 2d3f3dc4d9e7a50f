"""Tiny inputs for job tests: a 2-layer Llama, a BERT (not a causal LM), an instruction dataset."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ["hello", "world", "open", "weights", "hub", "commons", "model", "data", "red", "green", "blue", "one",
         "two", "three", "cat", "dog"]
SPECIALS = ["[UNK]", "[PAD]", "<s>", "</s>", "#", ":", "Instruction", "Response", "repeat", "reverse", "say"]


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(folder)


def tiny_llama(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=2, eos_token_id=3, pad_token_id=1)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    _tokenizer(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n"
                                      "pipeline_tag: text-generation\n---\n# Tiny Llama\n")
    return folder


def tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder, safe_serialization=True)
    _tokenizer(folder)
    return folder


def rows(n: int = 48, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, 3)
        if rng.random() < 0.5:
            out.append({"instruction": "repeat " + " ".join(words), "response": " ".join(words)})
        else:
            out.append({"instruction": "reverse " + " ".join(words), "response": " ".join(reversed(words))})
    return out


def tiny_dataset(folder: Path, n_train: int = 48, n_test: int = 16, columns: tuple[str, str] | None = None) -> Path:
    """data/train.jsonl and data/test.jsonl with `instruction` and `response` (or renamed) columns."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    all_rows = rows(n_train + n_test)
    for split, part in (("train", all_rows[:n_train]), ("test", all_rows[n_train:])):
        if columns:
            part = [{columns[0]: r["instruction"], columns[1]: r["response"]} for r in part]
        (folder / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny instructions\n")
    return folder
