"""Log-likelihood of continuations given contexts with a causal LM: batched, with the context computed once.

Every likelihood-based task reduces to requests (context, continuation) -> log P(continuation | context)
summed over the continuation's tokens, plus whether greedy decoding would have produced it.

Tokenisation is lm-evaluation-harness's (`_encode_pair`), so scores are comparable with it:

    trailing whitespace of the context moves to the front of the continuation;
    whole = encode(context + continuation); ctx = encode(context); cont = whole[len(ctx):]
    an empty context becomes [BOS] (or [EOS] when there is no BOS), as lm-eval's prefix token;
    requests longer than max_length + 1 tokens are cut from the left.

The straightforward computation (`loglik_reference`, lm-eval with batch size 1) runs the model on
(ctx + cont)[:-1] for every request. Multiple-choice questions repeat one context for 2-12 choices,
so `loglikelihood` instead

    1. groups requests by context tokens and runs each distinct context once, batched (right-padded,
       so no mask is needed: causal attention never looks at the padding to the right):

           ctx batch  [B, Lc]  -> hidden [B, Lc, d] + KV cache [B, heads, Lc, hd] per layer
           only the last real position of each context goes through the LM head -> log p(cont[0])

    2. copies each context's KV rows once per continuation and runs the continuations from there:

           cont batch [R, Lk] = cont[:-1], right-padded
           attention mask [R, Lc + Lk] = (context positions < its length) ++ ones
           position ids   [R, Lk]      = len(ctx) + 0..Lk-1
           -> log p(cont[1:]), LM head only on real positions

    3. sorts contexts by length (and continuations within a batch by length) to cut padding, and
       fills batches up to a token budget.

Results equal the reference up to float rounding (tests check 1e-5 and identical decisions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Scored",
    "encode_pair",
    "encode_requests",
    "loglik_reference",
    "loglikelihood",
    "loglikelihood_rolling",
    "max_length_of",
    "prefix_token_id",
    "rolling_windows",
    "score_tokens",
]

Tokens = tuple[int, ...]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Scored:
    """The answer to one request."""

    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    is_greedy: bool
    """Every continuation token is the argmax at its position."""
    n_tokens: int
    """Continuation length in tokens."""


# --- tokenisation (lm-eval's) ------------------------------------------------------------------

def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context is replaced with: BOS, else EOS (lm-eval's `prefix_token_id`)."""
    if tokenizer.bos_token_id is not None:
        return int(tokenizer.bos_token_id)
    return int(tokenizer.eos_token_id)


def _encode_many(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool | None = None) -> list[list[int]]:
    """tokenizer.encode for each text, in one call per setting (lm-eval's `tok_encode`, which skips the
    special tokens when the text already starts with the prefix token's text)."""
    if not texts:
        return []
    out: list[list[int]] = [[] for _ in texts]
    bos_text = tokenizer.decode(prefix_token_id(tokenizer))
    plans: dict[bool | None, list[int]] = {}
    for i, text in enumerate(texts):
        special = add_special_tokens
        if special is None and bos_text and text.startswith(bos_text):
            special = False
        plans.setdefault(special, []).append(i)
    for special, indices in plans.items():
        kwargs = {} if special is None else {"add_special_tokens": special}
        encoded = tokenizer([texts[i] for i in indices], **kwargs)["input_ids"]
        for i, ids in zip(indices, encoded, strict=True):
            out[i] = list(ids)
    return out


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) exactly as lm-eval's `loglikelihood` + `_encode_pair`."""
    return encode_requests(tokenizer, [(context, continuation)])[0]


def encode_requests(tokenizer: Any, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """encode_pair for many requests, tokenising each distinct string once."""
    whole_texts: list[str] = []
    ctx_texts: list[str] = []
    empty_conts: list[str] = []
    plan: list[tuple[str, int, int]] = []
    for context, continuation in requests:
        if context == "":
            plan.append(("empty", len(empty_conts), -1))
            empty_conts.append(continuation)
            continue
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        plan.append(("pair", len(whole_texts), len(ctx_texts)))
        whole_texts.append(context + continuation)
        ctx_texts.append(context)
    distinct = sorted(set(whole_texts) | set(ctx_texts))
    encoded = dict(zip(distinct, _encode_many(tokenizer, distinct), strict=True))
    empties = _encode_many(tokenizer, empty_conts, add_special_tokens=False)
    prefix = prefix_token_id(tokenizer)
    out: list[tuple[list[int], list[int]]] = []
    for kind, a, b in plan:
        if kind == "empty":
            cont = empties[a]
            out.append(([prefix], cont) if not cont or cont[0] != prefix else (cont[:1], cont[1:]))
        else:
            whole, ctx = encoded[whole_texts[a]], encoded[ctx_texts[b]]
            out.append((ctx, whole[len(ctx):]))
    return out


def max_length_of(model: Any, tokenizer: Any = None, default: int = 2048) -> int:
    """The model's context length, looked up as lm-eval does (config, then tokenizer, then a default)."""
    config = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    length = getattr(tokenizer, "model_max_length", None)
    if length is not None and length < 10**20:
        return int(length)
    return default


def _truncate(ctx: Sequence[int], cont: Sequence[int], max_length: int) -> tuple[Tokens, Tokens]:
    """Cut from the left so that the model input (ctx + cont)[:-1] fits in max_length tokens."""
    if not cont:
        raise ValueError("empty continuation: nothing to score")
    if len(cont) > max_length:
        raise ValueError(f"continuation of {len(cont)} tokens is longer than max_length {max_length}")
    whole = (list(ctx) + list(cont))[-(max_length + 1):]
    return tuple(whole[: len(whole) - len(cont)]), tuple(cont)


# --- the model side ----------------------------------------------------------------------------

def _decoder(model: Any) -> Any:
    """The transformer body (embeddings + blocks + final norm) without the LM head."""
    return getattr(model, model.base_model_prefix)


def _head(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """LM head on selected hidden states [N, d] -> float32 logits [N, V] (with Gemma-style soft-capping)."""
    logits: torch.Tensor = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _token_scores(model: Any, hidden: torch.Tensor, targets: torch.Tensor,
                  chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each target given its hidden state [N, d], and whether it is the argmax.

    The LM head runs on `chunk` positions at a time: [N, V] logits of a long document would not fit.
    """
    logprobs, greedy = [], []
    for start in range(0, hidden.shape[0], chunk):
        logits = _head(model, hidden[start : start + chunk])  # [n, V]
        t = targets[start : start + chunk]
        logprobs.append(logits.gather(1, t[:, None])[:, 0] - torch.logsumexp(logits, dim=-1))
        greedy.append(logits.argmax(dim=-1) == t)
    return torch.cat(logprobs), torch.cat(greedy)


def _cache_kwarg(decoder: Any) -> str:
    """transformers 5.2x names the cache argument `cache` (older releases: `past_key_values`)."""
    import inspect

    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _sub_cache(model: Any, cache: Any, rows: torch.Tensor) -> Any:
    """A new KV cache whose row r is row rows[r] of `cache` (each context copied once per continuation)."""
    from transformers import DynamicCache

    data = [(layer.keys.index_select(0, rows), layer.values.index_select(0, rows)) for layer in cache.layers]
    return DynamicCache(ddp_cache_data=data, config=model.config)


@dataclass
class _Unit:
    """A distinct context and (a chunk of) its distinct continuations."""

    ctx: Tokens
    conts: list[Tokens]


def _batches(units: list[_Unit], batch_tokens: int, max_batch: int) -> list[list[_Unit]]:
    """Group units (sorted by context length, longest first) so that B * Lc stays within the token budget."""
    batches: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        width = len(current[0].ctx) if current else len(unit.ctx)
        if current and ((len(current) + 1) * width > batch_tokens or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(unit)
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def _score_batch(
    model: Any, batch: list[_Unit], batch_tokens: int, kv_tokens: int, out: dict[tuple[Tokens, Tokens], Scored]
) -> None:
    device = next(model.parameters()).device
    decoder = _decoder(model)
    lengths = [len(u.ctx) for u in batch]
    width = max(lengths)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    for b, unit in enumerate(batch):
        ids[b, : len(unit.ctx)] = torch.tensor(unit.ctx)
    # 1. contexts: [B, Lc] -> hidden [B, Lc, d] and the KV cache; logits only at each last real position.
    result = decoder(input_ids=ids.to(device), use_cache=True)
    hidden = result.last_hidden_state
    cache = result.cache if "cache" in result else result.past_key_values  # renamed in transformers 5.2x
    last = hidden[torch.arange(len(batch), device=device), torch.tensor(lengths, device=device) - 1]
    first_logits = _head(model, last)  # [B, V]
    first_lse = torch.logsumexp(first_logits, dim=-1)
    first_arg = first_logits.argmax(dim=-1)

    partial: dict[tuple[int, int], tuple[float, bool]] = {}
    rows: list[tuple[int, int]] = []  # (unit, continuation) pairs that need a continuation pass
    for b, unit in enumerate(batch):
        for c, cont in enumerate(unit.conts):
            lp = float(first_logits[b, cont[0]] - first_lse[b])
            partial[(b, c)] = (lp, bool(first_arg[b] == cont[0]))
            if len(cont) > 1:
                rows.append((b, c))
    # 2. continuations from the cache, longest first, in chunks within both token budgets.
    rows.sort(key=lambda r: -len(batch[r[0]].conts[r[1]]))
    start = 0
    while start < len(rows):
        lk = len(batch[rows[start][0]].conts[rows[start][1]]) - 1
        n = max(1, min(batch_tokens // max(lk, 1), kv_tokens // (width + lk)))
        chunk = rows[start : start + n]
        start += n
        inp = torch.zeros((len(chunk), lk), dtype=torch.long)
        mask = torch.ones((len(chunk), width + lk), dtype=torch.long)
        positions = torch.zeros((len(chunk), lk), dtype=torch.long)
        for r, (b, c) in enumerate(chunk):
            cont = batch[b].conts[c]
            inp[r, : len(cont) - 1] = torch.tensor(cont[:-1])
            mask[r, lengths[b] : width] = 0
            positions[r] = lengths[b] + torch.arange(lk)
        sub = _sub_cache(model, cache, torch.tensor([b for b, _ in chunk], device=device))
        h = decoder(input_ids=inp.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    use_cache=True, **{_cache_kwarg(decoder): sub}).last_hidden_state  # [R, Lk, d]
        # Real positions only: row r predicts cont[1:] from positions 0..len(cont)-2.
        sel_rows, sel_pos, targets = [], [], []
        for r, (b, c) in enumerate(chunk):
            cont = batch[b].conts[c]
            sel_rows += [r] * (len(cont) - 1)
            sel_pos += list(range(len(cont) - 1))
            targets += list(cont[1:])
        selected = h[torch.tensor(sel_rows, device=device), torch.tensor(sel_pos, device=device)]
        lps, greedy = _token_scores(model, selected, torch.tensor(targets, device=device))
        offset = 0
        for b, c in chunk:
            k = len(batch[b].conts[c]) - 1
            lp, ok = partial[(b, c)]
            partial[(b, c)] = (lp + float(lps[offset : offset + k].double().sum()),
                               ok and bool(greedy[offset : offset + k].all()))
            offset += k
    for (b, c), (lp, ok) in partial.items():
        cont = batch[b].conts[c]
        out[(batch[b].ctx, cont)] = Scored(lp, ok, len(cont))


@torch.inference_mode()
def _score_full(model: Any, pairs: list[tuple[Tokens, Tokens]], batch_tokens: int,
                out: dict[tuple[Tokens, Tokens], Scored]) -> None:
    """Batched, length-sorted, but every request runs its whole context (no reuse)."""
    device = next(model.parameters()).device
    order = sorted(pairs, key=lambda p: -(len(p[0]) + len(p[1])))
    start = 0
    while start < len(order):
        width = len(order[start][0]) + len(order[start][1]) - 1
        chunk = order[start : start + max(1, batch_tokens // width)]
        start += len(chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        sel_rows, sel_pos, targets = [], [], []
        for r, (ctx, cont) in enumerate(chunk):
            seq = list(ctx) + list(cont)
            ids[r, : len(seq) - 1] = torch.tensor(seq[:-1])
            sel_rows += [r] * len(cont)
            sel_pos += list(range(len(ctx) - 1, len(seq) - 1))
            targets += list(cont)
        hidden = _decoder(model)(input_ids=ids.to(device)).last_hidden_state
        selected = hidden[torch.tensor(sel_rows, device=device), torch.tensor(sel_pos, device=device)]
        lps, greedy = _token_scores(model, selected, torch.tensor(targets, device=device))
        offset = 0
        for ctx, cont in chunk:
            k = len(cont)
            out[(ctx, cont)] = Scored(float(lps[offset : offset + k].double().sum()),
                                      bool(greedy[offset : offset + k].all()), k)
            offset += k


def score_tokens(
    model: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    max_length: int,
    batch_tokens: int = 2048,
    kv_tokens: int | None = None,
    reuse_context: bool = True,
    max_conts_per_unit: int = 256,
    progress: Progress | None = None,
) -> list[Scored]:
    """Score tokenised (context, continuation) pairs; see the module docstring for the method.

    batch_tokens bounds the tokens of one forward pass, kv_tokens (default 4 x batch_tokens) the
    context positions copied into one continuation pass.
    """
    kv_tokens = kv_tokens or 4 * batch_tokens
    tokenised = [_truncate(ctx, cont, max_length) for ctx, cont in pairs]
    distinct = list(dict.fromkeys(tokenised))  # the same request is computed once
    done: dict[tuple[Tokens, Tokens], Scored] = {}
    if not reuse_context:
        _score_full(model, distinct, batch_tokens, done)
        if progress:
            progress(len(distinct), len(distinct))
        return [done[p] for p in tokenised]
    by_context: dict[Tokens, list[Tokens]] = {}
    for ctx, cont in distinct:
        by_context.setdefault(ctx, []).append(cont)
    units = [
        _Unit(ctx, conts[i : i + max_conts_per_unit])
        for ctx, conts in by_context.items()
        for i in range(0, len(conts), max_conts_per_unit)
    ]
    units.sort(key=lambda u: (-len(u.ctx), -max(len(c) for c in u.conts)))
    for batch in _batches(units, batch_tokens, max_batch=max(1, batch_tokens // 8)):
        _score_batch(model, batch, batch_tokens, kv_tokens, done)
        if progress:
            progress(len(done), len(distinct))
    return [done[p] for p in tokenised]


def loglikelihood(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    max_length: int | None = None,
    batch_tokens: int = 2048,
    reuse_context: bool = True,
    progress: Progress | None = None,
) -> list[Scored]:
    """log P(continuation | context) for each (context, continuation), tokenised as lm-eval does."""
    max_length = max_length or max_length_of(model, tokenizer)
    pairs = encode_requests(tokenizer, requests)
    return score_tokens(model, pairs, max_length=max_length, batch_tokens=batch_tokens,
                        reuse_context=reuse_context, progress=progress)


@torch.inference_mode()
def loglik_reference(
    model: Any, tokenizer: Any, requests: Sequence[tuple[str, str]], *, max_length: int | None = None
) -> list[Scored]:
    """The straightforward computation: one request at a time, whole input, full log-softmax (lm-eval, batch 1)."""
    max_length = max_length or max_length_of(model, tokenizer)
    device = next(model.parameters()).device
    out = []
    for ctx, cont in encode_requests(tokenizer, requests):
        inp = (ctx + cont)[-(max_length + 1):][:-1]
        logits = model(torch.tensor([inp], device=device)).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)[-len(cont):]  # [len(cont), V]
        targets = torch.tensor(cont, device=device)
        picked = logprobs.gather(1, targets[:, None])[:, 0]
        out.append(Scored(float(picked.double().sum()), bool((logprobs.argmax(-1) == targets).all()), len(cont)))
    return out


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[tuple[list[int], list[int]]]:
    """lm-eval's disjoint rolling windows (context_len=1) over a document's tokens.

    The first window predicts tokens[:L] from [prefix] + tokens[:L-1]; each later window predicts
    the next L tokens (or the rest) from the token just before them, so every token is predicted
    once, with at most L-1 tokens of context from its own window.
    """
    if not tokens:
        return []
    windows: list[tuple[list[int], list[int]]] = []
    first = min(max_length, len(tokens))
    windows.append(([prefix, *tokens[: first - 1]], list(tokens[:first])))
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, max_length)
        end = predicted + n
        windows.append((list(tokens[end - max_length - 1 : end - 1]), list(tokens[end - n : end])))
        predicted += n
    # make_disjoint_window: the context keeps only what precedes the predicted tokens.
    return [(ctx[: len(ctx) - (len(cont) - 1)], cont) for ctx, cont in windows]


def loglikelihood_rolling(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    batch_tokens: int = 2048,
    progress: Progress | None = None,
) -> list[float]:
    """Total log-likelihood of each text, scored in disjoint windows of max_length tokens (lm-eval's rolling)."""
    max_length = max_length or max_length_of(model, tokenizer)
    prefix = prefix_token_id(tokenizer)
    owners: list[int] = []
    pairs: list[tuple[list[int], list[int]]] = []
    for i, tokens in enumerate(_encode_many(tokenizer, list(texts))):
        for window in rolling_windows(tokens, prefix, max_length):
            owners.append(i)
            pairs.append(window)
    scored = score_tokens(model, pairs, max_length=max_length, batch_tokens=batch_tokens, progress=progress)
    totals = [0.0] * len(texts)
    for owner, s in zip(owners, scored, strict=True):
        totals[owner] += s.logprob
    return totals
