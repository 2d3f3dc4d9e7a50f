"""The llama.cpp engine: GGUF models decoded by llama.cpp through llama-cpp-python's bindings to its C API,
with continuous batching.

Each request gets a sequence slot in one llama.cpp context (`n_seq_max` slots, a KV cache of its own
per slot), and every `step` is one `llama_decode` over all live slots: one token for each slot that is
decoding plus the prompt (in chunks) of each slot just admitted. A request therefore starts at the
next step instead of waiting for a running batch to end, and leaves as soon as it is finished; each
slot samples with its own chain of llama.cpp samplers (temperature, top_p, seed), so requests with any
sampling share a step. This is the scheme of llama.cpp's own server; the decoding is llama.cpp's.

The model file is a GGUF from the repo itself, or our export of a Llama checkpoint
(`commons.ml.gguf_export`) cached by source and type. Text goes through llama.cpp's tokenizer and the
chat template in the file's metadata, so a GGUF-only repo serves as well as a transformers one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
from pathlib import Path
from typing import Any

from commons.serving.engine import SamplingParams
from commons.serving.exports import source_key

# Types our exporter writes (commons.ml.gguf_export). A checkpoint is served as it is, F16 by default
# (llama.cpp's logits within 0.01 std of float32); quantizing is the user's choice (`--gguf-type`, or a
# quantize job's repo): llama.cpp's Q8_0 kernels, which also round activations to 8 bits, turn the
# demo's near-tie first token for "What is the capital of France?" from "The" to "L'Étoile, ...".
EXPORT_TYPES = ("F16", "Q8_0", "Q4_0")
DEFAULT_TYPE = "F16"
# Prompt tokens one step may take (all slots together): long prompts are prefilled over several steps,
# so decoding rows keep getting a token every step.
STEP_TOKENS = 512


def has_gguf(model_dir: Path) -> bool:
    """Whether the repo holds a GGUF at its root."""
    return any(model_dir.glob("*.gguf"))


def can_export(model_dir: Path) -> bool:
    """Whether our exporter writes this checkpoint as GGUF (a Llama with a byte-level BPE tokenizer)."""
    from commons.ml.gguf_export import GgufExportError, check_exportable

    try:
        check_exportable(model_dir)
    except (GgufExportError, OSError, KeyError, ValueError):
        return False
    return True


def pick_gguf(model_dir: Path, wanted: str | None) -> Path | None:
    """The repo's own GGUF to serve: the one whose name ends with `-<wanted>.gguf`, or the only one.

    None when the repo has none (of type `wanted`). Raises ValueError when several could be meant.
    """
    files = sorted(model_dir.glob("*.gguf"))
    if wanted:
        return next((f for f in files if f.stem.lower().endswith(wanted.lower())), None)
    if not files:
        return None
    if len(files) > 1:
        raise ValueError(f"the repo has several GGUF files ({', '.join(f.name for f in files)}): "
                         "choose one with --gguf-type")
    return files[0]


def model_file(model_dir: Path, cache_dir: Path, file_type: str | None) -> Path:
    """The GGUF to load: the repo's own, or our export of its checkpoint (built once into the cache)."""
    own = pick_gguf(model_dir, file_type)
    if own is not None:
        return own
    if not (model_dir / "config.json").exists():
        files = ", ".join(f.name for f in sorted(model_dir.glob("*.gguf")))
        raise ValueError(f"no GGUF of type {file_type} in the repo (it has {files}) and no checkpoint to export")
    wanted = file_type or DEFAULT_TYPE
    if wanted not in EXPORT_TYPES:
        raise ValueError(f"a checkpoint is exported to GGUF as one of {', '.join(EXPORT_TYPES)}, not {wanted}")
    from commons.ml.gguf_export import export_gguf

    target = cache_dir / f"{model_dir.name}-{source_key(model_dir, wanted)}-{wanted}.gguf"
    if not target.exists():
        export_gguf(model_dir, target, wanted)  # atomic: the file appears whole or not at all
    return target


log = logging.getLogger(__name__)
_LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level WARN, ERROR; DEBUG/INFO/CONT dropped
_log_callback: Any = None  # kept referenced: llama.cpp holds the C pointer


def _quiet(lc: Any) -> None:
    """Route llama.cpp's warnings and errors to logging; without a callback it prints every line to stderr."""
    global _log_callback
    if _log_callback is not None:
        return

    def forward(level: int, text: bytes, _user: Any) -> None:
        if level in _LOG_LEVELS:
            log.log(_LOG_LEVELS[level], "%s", text.decode("utf-8", errors="replace").rstrip())

    _log_callback = lc.llama_log_callback(forward)
    lc.llama_log_set(_log_callback, ctypes.c_void_p(0))


class LlamaCppEngine:
    """One GGUF model in one llama.cpp context with `max_batch` sequence slots."""

    name = "llama.cpp"
    continuous = True

    def __init__(self, path: Path, max_batch: int = 8, context: int = 2048, threads: int | None = None,
                 step_tokens: int = STEP_TOKENS) -> None:
        import llama_cpp as lc

        _quiet(lc)
        self._lc = lc
        self.path = path
        lc.llama_backend_init()
        self._model = lc.llama_model_load_from_file(str(path).encode(), lc.llama_model_default_params())
        if not self._model:
            raise ValueError(f"llama.cpp could not load {path.name}")
        self._vocab = lc.llama_model_get_vocab(self._model)
        self.context_length = min(context, int(lc.llama_model_n_ctx_train(self._model)) or context)
        self.max_batch = max_batch
        params = lc.llama_context_default_params()
        params.n_seq_max = max_batch
        params.kv_unified = False  # each slot its own cache of `context_length` positions
        params.n_ctx = self.context_length * max_batch
        self.step_tokens = step_tokens
        params.n_batch = params.n_ubatch = step_tokens + max_batch
        params.n_threads = params.n_threads_batch = threads or len(os.sched_getaffinity(0))
        self._ctx = lc.llama_init_from_model(self._model, params)
        if not self._ctx:
            lc.llama_model_free(self._model)
            raise ValueError(f"llama.cpp could not create a context for {path.name} ({max_batch} x {context} tokens)")
        self._memory = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(step_tokens + max_batch, 0, 1)
        n_vocab = int(lc.llama_vocab_n_tokens(self._vocab))
        self.eos_ids = frozenset(t for t in range(n_vocab) if lc.llama_vocab_is_eog(self._vocab, t))
        self._template = self._meta("tokenizer.chat_template")
        self._free = list(range(max_batch - 1, -1, -1))
        self._slots: dict[int, _Slot] = {}

    # --- text ------------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        size = self._lc.llama_model_meta_val_str(self._model, key.encode(), None, 0)
        if size < 0:
            return None
        buf = ctypes.create_string_buffer(size + 1)
        self._lc.llama_model_meta_val_str(self._model, key.encode(), buf, size + 1)
        return buf.value.decode("utf-8", errors="replace")

    def _tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode()
        room = len(data) + 8
        out = (self._lc.llama_token * room)()
        n = self._lc.llama_tokenize(self._vocab, data, len(data), out, room, add_special, parse_special)
        if n < 0:  # -n is the room it needs
            out = (self._lc.llama_token * -n)()
            n = self._lc.llama_tokenize(self._vocab, data, len(data), out, -n, add_special, parse_special)
        return list(out[:n])

    def _token_text(self, token: int) -> str:
        return (self._lc.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", errors="replace")

    def encode(self, text: str) -> list[int]:
        return self._tokenize(text, add_special=True, parse_special=False)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        if not self._template:
            raise ValueError("this model has no chat template: use /v1/completions")
        from transformers.utils import chat_template_utils

        # transformers' own rendering (sandboxed jinja2, its helpers), as for the other engines; it
        # returns (texts, generation indices) although annotated as a string.
        render: Any = chat_template_utils.render_jinja_template
        rendered, _ = render([messages], chat_template=self._template, add_generation_prompt=True,
                             bos_token=self._token_text(self._lc.llama_vocab_bos(self._vocab)),
                             eos_token=self._token_text(self._lc.llama_vocab_eos(self._vocab)))
        # The template already wrote the special tokens it wants.
        return self._tokenize(rendered[0], add_special=False, parse_special=True)

    def decode(self, ids: list[int]) -> str:
        if not ids:
            return ""
        tokens = (self._lc.llama_token * len(ids))(*ids)
        room = 8 * len(ids) + 16
        buf = ctypes.create_string_buffer(room)
        n = self._lc.llama_detokenize(self._vocab, tokens, len(ids), buf, room, True, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lc.llama_detokenize(self._vocab, tokens, len(ids), buf, -n, True, False)
        return buf.raw[:n].decode("utf-8", errors="replace")

    # --- continuous batching -------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def admit(self, prompt: list[int], params: SamplingParams) -> int:
        """Give the request a slot; its prompt is prefilled from the next `step` on."""
        if not self._free:
            raise RuntimeError("no free slot: admit at most max_batch requests at once")
        if not prompt:
            raise ValueError("empty prompt")
        slot = self._free.pop()
        self._slots[slot] = _Slot(list(prompt), self._sampler(params))
        return slot

    def _sampler(self, params: SamplingParams) -> Any:
        lc = self._lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if params.greedy:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            return chain
        if params.top_p < 1.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(params.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def step(self) -> dict[int, int]:
        """One `llama_decode` over every live slot; returns the new token of each slot that produced one.

        A decoding slot adds one token; a slot still prefilling adds its next prompt chunk (up to
        `step_tokens` prompt tokens in all) and produces no token until its last chunk is decoded.
        """
        batch = self._batch
        n = 0
        sample_at: dict[int, int] = {}

        def put(token: int, pos: int, slot: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot
            batch.logits[n] = logits
            if logits:
                sample_at[slot] = n
            n += 1

        # Rows in slot order, each slot's tokens together: llama.cpp decodes a batch whose sequence
        # ids come out of order far slower (measured: batch 8 at batch-1 speed).
        budget = self.step_tokens
        for slot, state in sorted(self._slots.items()):
            if not state.pending:
                if state.last is not None:
                    put(state.last, state.pos, slot, True)
                continue
            take = state.pending[:budget]
            del state.pending[:len(take)]
            budget -= len(take)
            for i, token in enumerate(take):
                put(token, state.pos + i, slot, not state.pending and i == len(take) - 1)
            state.pos += len(take)
        if n == 0:
            return {}
        batch.n_tokens = n
        code = self._lc.llama_decode(self._ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed with code {code}")
        tokens = {}
        for slot, index in sample_at.items():
            state = self._slots[slot]
            token = int(self._lc.llama_sampler_sample(state.sampler, self._ctx, index))
            if state.last is not None:
                state.pos += 1  # the decoded token is now in the cache
            state.last = token
            tokens[slot] = token
        return tokens

    def release(self, slot: int) -> None:
        """Free the slot and its cache."""
        state = self._slots.pop(slot, None)
        if state is None:
            return
        self._lc.llama_memory_seq_rm(self._memory, slot, -1, -1)
        self._lc.llama_sampler_free(state.sampler)
        self._free.append(slot)

    def close(self) -> None:
        for slot in list(self._slots):
            self.release(slot)
        self._lc.llama_batch_free(self._batch)
        self._lc.llama_free(self._ctx)
        self._lc.llama_model_free(self._model)


class _Slot:
    """A request inside the context: prompt tokens not yet decoded, next position, last sampled token."""

    __slots__ = ("last", "pending", "pos", "sampler")

    def __init__(self, pending: list[int], sampler: Any) -> None:
        self.pending = pending
        self.sampler = sampler
        self.pos = 0
        self.last: int | None = None
