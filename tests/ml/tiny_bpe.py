"""A tiny Llama with a real byte-level BPE tokenizer and a chat template: what GGUF export, llama.cpp and
the quantize job are tested on (a word-level tokenizer cannot be written as GGUF)."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")
CORPUS = ["Open weights for everyone: the hub keeps models, datasets and their history.",
          "def add(a, b):\n    return a + b  # 12345 67890",
          "The capital of France is Paris. The capital of Italy is Rome.",
          "Quantization trades a little quality for a lot of memory; measure it!"] * 20


def tiny_bpe_llama(folder: Path, seed: int = 0, hidden: int = 64) -> Path:
    """A 2-layer Llama (GQA, tied embeddings like SmolLM2) with a trained byte-level BPE and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=384, special_tokens=specials,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True, rope_theta=10000.0,
                         initializer_range=0.2)  # peaked next-token distributions, unlike the default 0.02
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms away from 1.0, so a lost or swapped norm shows
        for param in model.parameters():
            if param.ndim == 1:
                param.uniform_(0.5, 1.5)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n"
                                      "pipeline_tag: text-generation\n---\n# Tiny BPE Llama\n")
    return folder
