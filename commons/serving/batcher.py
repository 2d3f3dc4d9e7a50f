"""Concurrent requests in, batches out: one thread feeds the engine, requests wait on asyncio queues.

Two ways to drive an engine. A continuous engine (llama.cpp) is stepped: before every step the
batcher admits waiting requests into free slots, after it drops the finished ones, so a request
starts at the next step and leaves when it is done. A batch engine (transformers, ONNX Runtime
GenAI, vLLM's offline API) runs whole batches: requests that arrive while one runs wait for the
next, which takes every waiting request whose sampling can share a batch (the engine's `batch_key`)
up to the engine's `max_batch`. Stop strings, `max_tokens`, EOS and incremental detokenisation are
decided here, the same for every engine, so engines only decode.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

from commons.serving.engine import AnyEngine, ContinuousEngine, Engine, SamplingParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delta:
    """New text of one request (may be empty when only tokens that make no text yet arrived)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of one request: why it ended and how many tokens it used."""

    reason: str  # "stop" (EOS or a stop string) or "length" (max_tokens or the context)
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    message: str


Event = Delta | Finished | Failed


@dataclass
class BatchStats:
    """What the batcher did: how many batches of which size. Read by /v1/stats and the tests."""

    requests: int = 0
    batches: int = 0
    max_batch: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    generated_tokens: int = 0

    def record(self, size: int) -> None:
        """One engine call (a batch, or a step of a continuous engine) that decoded `size` rows."""
        self.batches += 1
        self.sizes[size] += 1
        self.max_batch = max(self.max_batch, size)

    def as_dict(self) -> dict[str, object]:
        return {"requests": self.requests, "batches": self.batches, "max_batch": self.max_batch,
                "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
                "generated_tokens": self.generated_tokens}


@dataclass(eq=False)
class Request:
    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event]
    cancelled: bool = False

    async def events(self) -> AsyncIterator[Event]:
        try:
            while True:
                event = await self.queue.get()
                yield event
                if not isinstance(event, Delta):
                    return
        finally:
            self.cancelled = True  # the client went away: the batcher drops the row at the next step


@dataclass
class _Row:
    """Decoding state of one request inside a running batch."""

    request: Request
    ids: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the decoded text already sent
    done: bool = False

    def send(self, event: Event) -> None:
        try:
            self.request.loop.call_soon_threadsafe(self.request.queue.put_nowait, event)
        except RuntimeError:  # the requester's event loop is closed: nobody is listening any more
            self.request.cancelled = True

    def fail(self, exc: Exception) -> None:
        """End the request with an error (once)."""
        if not self.done:
            self.done = True
            self.send(Failed(f"generation failed: {exc}"))


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters might be the start of a stop string (or of a split UTF-8 char)."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    if text.endswith("\ufffd"):
        hold = max(hold, 1)
    return hold


class Batcher:
    """Runs the engine in one thread; `submit` and `Request.events` are called from the event loop."""

    def __init__(self, engine: AnyEngine, gather_s: float = 0.005, gather_max_s: float = 0.05) -> None:
        self.engine = engine
        self.stats = BatchStats()
        self._gather_s = gather_s
        self._gather_max_s = gather_max_s
        self._waiting: deque[Request] = deque()
        self._wake = threading.Condition()
        self._closed = False
        run = self._run_continuous if getattr(engine, "continuous", False) else self._run
        self._thread = threading.Thread(target=run, name="commons-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompt: list[int], params: SamplingParams) -> Request:
        request = Request(prompt, params, asyncio.get_running_loop(), asyncio.Queue())
        with self._wake:
            self._waiting.append(request)
            self._wake.notify()
        return request

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)

    def _next_batch(self) -> list[Request] | None:
        engine = cast(Engine, self.engine)
        with self._wake:
            while not self._waiting and not self._closed:
                self._wake.wait()
            if self._closed:
                return None
        # Requests sent together reach the batcher a few milliseconds apart (each is authorised and
        # tokenised first): keep gathering while more keep coming, up to `gather_max_s`.
        waited, seen = 0.0, -1
        while waited < self._gather_max_s:
            with self._wake:
                count = len(self._waiting)
            if count == seen or count >= engine.max_batch:
                break
            seen = count
            time.sleep(self._gather_s)
            waited += self._gather_s
        with self._wake:
            first = self._waiting[0]
            key = engine.batch_key(first.params)
            batch = [r for r in self._waiting if engine.batch_key(r.params) == key][: engine.max_batch]
            for r in batch:
                self._waiting.remove(r)
        return batch

    def _run(self) -> None:
        engine = cast(Engine, self.engine)
        while (batch := self._next_batch()) is not None:
            rows = [_Row(r) for r in batch if not r.cancelled]
            if not rows:
                continue
            self.stats.requests += len(rows)
            self.stats.record(len(rows))
            try:
                engine.generate_batch([r.request.prompt for r in rows], [r.request.params for r in rows],
                                      lambda tokens, rows=rows: self._step(rows, tokens))  # type: ignore[misc]
            except Exception as exc:
                log.exception("generation failed")
                for row in rows:
                    row.fail(exc)
                continue
            for row in rows:  # the engine stopped early (it should not): end the stream all the same
                if not row.done:
                    self._finish(row, "length")

    def _step(self, rows: list[_Row], tokens: list[int]) -> list[bool]:
        for row, token in zip(rows, tokens, strict=True):
            self._take(row, token)
        return [row.done for row in rows]

    def _take(self, row: _Row, token: int) -> None:
        """One new token of one row: end it on EOS, a stop string, max_tokens or the context; else send text."""
        if row.done:
            return
        if row.request.cancelled:
            row.done = True
            return
        if token in self.engine.eos_ids:
            text = self.engine.decode(row.ids)  # send what was held back for a stop string
            if len(text) > row.sent:
                row.send(Delta(text[row.sent:]))
            self._finish(row, "stop")
            return
        row.ids.append(token)
        self.stats.generated_tokens += 1
        self._advance(row)

    def _run_continuous(self) -> None:
        engine = cast(ContinuousEngine, self.engine)
        live: dict[int, _Row] = {}
        while True:
            with self._wake:
                while not self._waiting and not live and not self._closed:
                    self._wake.wait()
                if self._closed:
                    break
                admitted = []
                while self._waiting and len(live) < engine.max_batch:
                    request = self._waiting.popleft()
                    if not request.cancelled:
                        admitted.append(request)
            for request in admitted:
                row = _Row(request)
                try:
                    live[engine.admit(request.prompt, request.params)] = row
                except Exception as exc:  # e.g. a prompt the engine refuses: that request fails alone
                    log.exception("admission failed")
                    row.fail(exc)
                    continue
                self.stats.requests += 1
            try:
                tokens = engine.step()
            except Exception as exc:
                log.exception("generation failed")
                for slot, row in live.items():
                    row.fail(exc)
                    engine.release(slot)
                live.clear()
                continue
            if tokens:
                self.stats.record(len(tokens))
            for slot, token in tokens.items():
                try:
                    self._take(live[slot], token)
                except Exception as exc:  # e.g. a decoding error: that request fails, the others go on
                    log.exception("request failed")
                    live[slot].fail(exc)
            for slot in [s for s, row in live.items() if row.done or row.request.cancelled]:
                engine.release(slot)
                del live[slot]

    def _advance(self, row: _Row) -> None:
        params = row.request.params
        text = self.engine.decode(row.ids)
        for stop in params.stop:
            at = text.find(stop, max(0, row.sent - len(stop)))
            if at != -1:
                text = text[:at]
                if len(text) > row.sent:
                    row.send(Delta(text[row.sent:]))
                    row.sent = len(text)
                self._finish(row, "stop")
                return
        full = len(row.ids) >= params.max_tokens or len(row.request.prompt) + len(row.ids) >= self.engine.context_length
        upto = len(text) if full else len(text) - _held_back(text, params.stop)
        if upto > row.sent:
            row.send(Delta(text[row.sent:upto]))
            row.sent = upto
        if full:
            self._finish(row, "length")

    def _finish(self, row: _Row, reason: str) -> None:
        row.done = True
        row.send(Finished(reason, len(row.request.prompt), len(row.ids)))
