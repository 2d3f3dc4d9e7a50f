"""Training data: load a dataset snapshot, check the recipe's columns, turn rows into token ids.

Two prompt formats:

    plain  text ------------------------------------------> ids = tok(text) + [eos]; loss on every token
    chat   instruction, response -> chat template (or the fallback below)
           ids = tok(prompt part) + tok(response part) + [eos]; loss on the response part only

The fallback template, for tokenizers without a chat template, is Alpaca-style:
`### Instruction:\\n{instruction}\\n\\n### Response:\\n{response}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commons.ml.checks import InputError
from commons.ml.specs import LoraRecipe

IGNORE = -100  # label id the loss skips (prompt tokens, padding)
FALLBACK_PROMPT = "### Instruction:\n{instruction}\n\n### Response:\n"


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def load_splits(data_dir: Path, recipe: LoraRecipe, repo_id: str, cache_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The training split (and eval split, if any) as lists of rows, after checking splits and columns."""
    import datasets

    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_dataset(str(data_dir), cache_dir=str(cache_dir))
    except Exception as exc:  # datasets raises many types for "no data files", "bad json", ...
        raise InputError(f"dataset {repo_id} could not be read: {exc}") from None
    wanted = [recipe.train_split] + ([recipe.eval_split] if recipe.eval_split else [])
    out: dict[str, list[dict[str, Any]]] = {}
    for split in wanted:
        if split not in loaded:
            raise InputError(f"dataset {repo_id} has no split {split!r}; its splits are: {', '.join(loaded)}")
        table = loaded[split]
        missing = [c for c in recipe.columns if c not in table.column_names]
        if missing:
            raise InputError(
                f"dataset {repo_id} split {split!r} has no column(s) {', '.join(map(repr, missing))} named by the "
                f"recipe ({recipe.prompt_format} format); its columns are: {', '.join(table.column_names)}"
            )
        if len(table) == 0:
            raise InputError(f"dataset {repo_id} split {split!r} is empty")
        out[split] = [{c: row[c] for c in recipe.columns} for row in table]
    return out


def template_name(tokenizer: Any, recipe: LoraRecipe) -> str:
    """Which formatting the examples get (recorded in the model card)."""
    if recipe.prompt_format == "plain":
        return "plain text"
    return "the tokenizer's chat template" if getattr(tokenizer, "chat_template", None) else "Alpaca-style fallback"


def encode(rows: list[dict[str, Any]], tokenizer: Any, recipe: LoraRecipe) -> list[Example]:
    """Token ids and labels for each row, truncated to `max_seq_len`; rows with no target token are dropped."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    examples = []
    for row in rows:
        if recipe.prompt_format == "plain":
            ids = tokenizer(str(row[recipe.text_column]), add_special_tokens=True)["input_ids"] + eos
            labels = list(ids)
        else:
            prompt_ids, response_ids = _chat_parts(tokenizer, str(row[recipe.instruction_column]),
                                                   str(row[recipe.response_column]))
            ids = prompt_ids + response_ids + eos
            labels = [IGNORE] * len(prompt_ids) + response_ids + eos
        example = Example(ids[: recipe.max_seq_len], labels[: recipe.max_seq_len])
        # A causal LM predicts token t from tokens < t, so the first label never counts.
        if any(label != IGNORE for label in example.labels[1:]):
            examples.append(example)
    return examples


def _chat_parts(tokenizer: Any, instruction: str, response: str) -> tuple[list[int], list[int]]:
    if getattr(tokenizer, "chat_template", None):
        user = [{"role": "user", "content": instruction}]
        prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": response}], tokenize=False)
        if full.startswith(prompt):
            # The template may close the turn with its own end token; we append eos ourselves.
            reply = full[len(prompt):]
            return (tokenizer(prompt, add_special_tokens=False)["input_ids"],
                    tokenizer(reply, add_special_tokens=False)["input_ids"])
    prompt = FALLBACK_PROMPT.format(instruction=instruction)
    return (tokenizer(prompt, add_special_tokens=True)["input_ids"],
            tokenizer(response, add_special_tokens=False)["input_ids"])


def pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def collate(examples: list[Example], pad: int) -> dict[str, Any]:
    """Right-pad a micro-batch: input_ids, attention_mask, labels as (B, T) long tensors."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(e.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def shuffled_batches(examples: list[Example], batch_size: int, generator: Any) -> Iterator[list[Example]]:
    """Endless micro-batches: each epoch a fresh permutation drawn from `generator` (a seeded torch.Generator)."""
    import torch

    while True:
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start:start + batch_size]]
