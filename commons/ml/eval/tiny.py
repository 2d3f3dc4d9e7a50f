"""A tiny random Llama and a tiny byte-level BPE tokenizer, saved as a model directory (for tests and docs).

The tokenizer is trained in a fraction of a second on the given texts, GPT-2 style (byte-level,
a leading space is part of the next word), so lm-eval's context/continuation split behaves as it
does on real models.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["SAMPLE_TEXT", "tiny_model_dir"]

SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. A man is standing in front of a camera. "
    "Question: How do I boil an egg? Answer: Put it in boiling water for nine minutes. "
    "The developer argued with the designer because she did not like the design. "
    "Q: What is the capital of France?\nA: Paris is the capital of France.\n\n"
    "He starts playing a harmonica for the camera. The woman poured the milk into a glass. "
)


def tiny_model_dir(out: Path, texts: Iterable[str] = (), *, vocab_size: int = 384, seed: int = 0,
                   layers: int = 2, hidden: int = 32, max_positions: int = 1024) -> Path:
    """Write a random LlamaForCausalLM (fp32) and a trained tokenizer to `out`; returns `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [SAMPLE_TEXT, *texts]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, initializer_range=0.5, tie_word_embeddings=False,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1)
    model = LlamaForCausalLM(config).float().eval()  # type: ignore[no-untyped-call]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
