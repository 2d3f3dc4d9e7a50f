"""A small synthetic instruction dataset that Commons generates itself, for demos and smoke tests.

Every row comes from a template filled with random numbers or made-up words and a computed answer,
so there is no third-party text in it and the project can license it as it likes (Apache-2.0).
The same seed always gives the same bytes.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

__all__ = ["TASKS", "generate_examples", "write_demo_dataset"]

Example = dict[str, str]
TaskFn = Callable[[random.Random], tuple[str, str]]

# Pseudo-words are built from these syllables, so no word list (and no one else's text) is needed.
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _word(rng: random.Random) -> str:
    word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 4)))
    # A closing consonant now and then, so lengths are not always even.
    return word + rng.choice(_CONSONANTS) if rng.random() < 0.3 else word


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: 4.5, 4500, 0.25 (never 4.5E+3)."""
    return format(value.normalize(), "f")


def _addition(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 999), rng.randint(0, 999)
    template = rng.choice(["What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} plus {b}."])
    return template.format(a=a, b=b), f"{a} + {b} = {a + b}."


def _subtraction(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 999), rng.randint(0, 999)
    template = rng.choice(["What is {a} - {b}?", "Subtract {b} from {a}.", "Compute {a} minus {b}."])
    return template.format(a=a, b=b), f"{a} - {b} = {a - b}."


def _multiplication(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    template = rng.choice(["What is {a} * {b}?", "Multiply {a} by {b}.", "Compute {a} times {b}."])
    return template.format(a=a, b=b), f"{a} * {b} = {a * b}."


def _comparison(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(1000), 2)
    if rng.random() < 0.5:
        question, answer = "Which is larger, {a} or {b}?", f"{max(a, b)} is larger than {min(a, b)}."
    else:
        question, answer = "Which is smaller, {a} or {b}?", f"{min(a, b)} is smaller than {max(a, b)}."
    return question.format(a=a, b=b), answer


def _parity(rng: random.Random) -> tuple[str, str]:
    n = rng.randint(0, 99_999)
    return f"Is {n} even or odd?", f"{n} is {'even' if n % 2 == 0 else 'odd'}."


def _sorting(rng: random.Random) -> tuple[str, str]:
    numbers = [rng.randint(0, 99) for _ in range(rng.randint(3, 7))]
    listed = ", ".join(map(str, numbers))
    if rng.random() < 0.5:
        return f"Sort these numbers from smallest to largest: {listed}.", ", ".join(map(str, sorted(numbers)))
    descending = sorted(numbers, reverse=True)
    return f"Sort these numbers from largest to smallest: {listed}.", ", ".join(map(str, descending))


def _reverse_word(rng: random.Random) -> tuple[str, str]:
    word = _word(rng)
    return f"Reverse the letters of the word '{word}'.", f"The word '{word}' reversed is '{word[::-1]}'."


def _count_letter(rng: random.Random) -> tuple[str, str]:
    word = _word(rng)
    # Mostly letters that occur, sometimes one that does not, so "0 times" is also seen.
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice(_CONSONANTS + _VOWELS)
    count = word.count(letter)
    return (
        f"How many times does the letter '{letter}' appear in '{word}'?",
        f"The letter '{letter}' appears {_plural(count, 'time')} in '{word}'.",
    )


def _word_length(rng: random.Random) -> tuple[str, str]:
    word = _word(rng)
    return f"How many letters are in the word '{word}'?", f"The word '{word}' has {len(word)} letters."


# (larger unit, smaller unit, how many smaller units make one larger unit)
_UNITS = [
    ("kilometer", "meter", 1000),
    ("meter", "centimeter", 100),
    ("centimeter", "millimeter", 10),
    ("kilogram", "gram", 1000),
    ("liter", "milliliter", 1000),
    ("hour", "minute", 60),
    ("minute", "second", 60),
    ("day", "hour", 24),
]


def _unit_conversion(rng: random.Random) -> tuple[str, str]:
    large, small, factor = rng.choice(_UNITS)
    # Decimal keeps every answer exact: 2.5 km is 2500 m, never 2499.9999999999995 m.
    if rng.random() < 0.5:
        amount = Decimal(rng.randint(1, 400)) / 4 if factor % 4 == 0 else Decimal(rng.randint(1, 100))
        source, target, result = large, small, amount * factor
    else:
        amount = Decimal(rng.randint(1, 100) * factor // rng.choice([1, 2, 4] if factor % 4 == 0 else [1]))
        source, target, result = small, large, amount / factor
    return (
        f"Convert {_quantity(amount, source)} to {target}s.",
        f"{_quantity(amount, source)} is {_quantity(result, target)}.",
    )


def _quantity(value: Decimal, unit: str) -> str:
    return f"{_decimal(value)} {unit if value == 1 else unit + 's'}"


TASKS: dict[str, TaskFn] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "comparison": _comparison,
    "parity": _parity,
    "sorting": _sorting,
    "reverse_word": _reverse_word,
    "count_letter": _count_letter,
    "word_length": _word_length,
    "unit_conversion": _unit_conversion,
}


def generate_examples(n: int, seed: int = 0) -> list[Example]:
    """`n` distinct examples, the tasks taking turns, in a seed-determined order.

    Each task has room for tens of thousands of distinct instructions; far beyond that, ValueError.
    """
    rng = random.Random(seed)
    names = list(TASKS)
    seen: set[str] = set()
    examples: list[Example] = []
    for index in range(n):
        task = names[index % len(names)]
        for _ in range(1000):
            instruction, response = TASKS[task](rng)
            # Distinct instructions, so no test question also appears in train.
            if instruction not in seen:
                break
        else:
            raise ValueError(f"task {task!r} ran out of distinct instructions; ask for fewer than {n} rows")
        seen.add(instruction)
        examples.append({"instruction": instruction, "response": response, "task": task})
    rng.shuffle(examples)
    return examples


def write_demo_dataset(out_dir: Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> dict[str, int]:
    """Write data/train.jsonl, data/test.jsonl and a README.md dataset card; return the split sizes."""
    if n_train < 1 or n_test < 1:
        raise ValueError("n_train and n_test must be at least 1")
    examples = generate_examples(n_train + n_test, seed)
    splits = {"train": examples[:n_train], "test": examples[n_train:]}

    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        # Bytes, not text mode, so the platform cannot change the line endings.
        (out_dir / "data" / f"{split}.jsonl").write_bytes(lines.encode("utf-8"))
    card = _dataset_card(splits, seed)
    (out_dir / "README.md").write_bytes(card.encode("utf-8"))
    return {split: len(rows) for split, rows in splits.items()}


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return next((label for bound, label in bounds if n < bound), "1M<n<10M")


def _dataset_card(splits: dict[str, list[Example]], seed: int) -> str:
    total = sum(len(rows) for rows in splits.values())
    counts = Counter(row["task"] for rows in splits.values() for row in rows)
    task_rows = "\n".join(f"| `{name}` | {TASKS[name](random.Random(0))[0]} | {counts[name]} |" for name in TASKS)
    example = json.dumps(splits["train"][0], ensure_ascii=False)
    sizes = ", ".join(f"{split}: {len(rows)}" for split, rows in splits.items())
    return f"""---
license: apache-2.0
task_categories:
- text-generation
language:
- en
size_categories:
- {_size_category(total)}
pretty_name: Commons synthetic instructions
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.jsonl
  - split: test
    path: data/test.jsonl
---

# Commons synthetic instructions

A small instruction-following dataset for demos and smoke tests of fine-tuning and evaluation.
Splits: {sizes} rows.

## How it was made

Every row was generated by `commons.ml.demo_data.write_demo_dataset(seed={seed})`, a program that
is part of Commons. Each instruction is one of a few fixed English templates filled in with random
integers or with made-up words (random consonant-vowel syllables such as `bako` or `tulemi`), and
each response is computed by the program: arithmetic, comparisons, sorting, letter counting, word
reversal and unit conversions done with exact decimal arithmetic. No text was collected from
anywhere, and no model wrote any of it.

Instructions are unique across both splits, so no test question appears in train. Running the
same version of the generator again with the same arguments produces byte-identical files.

## Tasks

| task | example instruction | rows |
| --- | --- | --- |
{task_rows}

## Fields

- `instruction`: the request, one sentence.
- `response`: the expected answer.
- `task`: which generator produced the row.

Example: `{example}`

## Limitations

The answers are correct by construction, but the language is narrow and repetitive: a model tuned on
this learns the formats, not general skills. It is meant to exercise a pipeline, not to teach.

## License

Apache-2.0. The data is entirely synthetic and contains no third-party content.
"""
