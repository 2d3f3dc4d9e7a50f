"""The seam between the API and an inference engine: what a request asks for, what an engine does."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens. temperature 0 is greedy; `seed` makes sampling repeatable."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


# Called once per decoding step with the new token of every row of the batch; returns, per row,
# whether that row is finished (EOS, max_tokens or a stop string, as the batcher decides).
StepCallback = Callable[[list[int]], list[bool]]


class Engine(Protocol):
    """An inference engine holding one model (and optionally a LoRA adapter applied to it).

    Engines decode in batches: `generate_batch` runs several prompts together and reports every
    step's tokens through `on_step`, which says which rows are finished; an engine stops when all are.
    """

    name: str
    context_length: int
    max_batch: int
    eos_ids: frozenset[int]

    def encode(self, text: str) -> list[int]:
        """Token ids of plain text (with the model's BOS when it uses one)."""
        ...

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of `messages` rendered with the model's chat template, ready for the reply.

        Raises ValueError when the model has no chat template.
        """
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids, special tokens dropped."""
        ...

    def batch_key(self, params: SamplingParams) -> Hashable:
        """Requests with equal keys may share a batch (engines that sample per row return one key)."""
        ...

    def generate_batch(self, prompts: list[list[int]], params: list[SamplingParams], on_step: StepCallback) -> None:
        """Decode every prompt at once until `on_step` reports all rows finished."""
        ...

    def close(self) -> None: ...


class ContinuousEngine(Protocol):
    """An engine whose batch changes between steps (continuous batching): requests join and leave at
    any step instead of waiting for a running batch to end. Each slot samples with its own params."""

    name: str
    context_length: int
    max_batch: int
    eos_ids: frozenset[int]
    continuous: bool  # True: the batcher checks this to choose how to drive the engine

    def encode(self, text: str) -> list[int]: ...

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def admit(self, prompt: list[int], params: SamplingParams) -> int:
        """Take a request into a free slot (at most `max_batch` at once); returns the slot."""
        ...

    def step(self) -> dict[int, int]:
        """Advance every admitted slot by one decoding step; the new token of each slot that made one."""
        ...

    def release(self, slot: int) -> None:
        """Drop a slot (finished or cancelled) and free its cache."""
        ...

    def close(self) -> None: ...


AnyEngine = Engine | ContinuousEngine

EngineFactory = Callable[[Path, "Path | None", dict[str, Any]], Engine]
