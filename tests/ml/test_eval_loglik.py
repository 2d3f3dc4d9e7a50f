"""The batched, context-reusing engine equals the one-request-at-a-time reference."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from commons.ml.eval import loglik  # noqa: E402
from commons.ml.eval.tiny import tiny_model_dir  # noqa: E402

CONTEXTS = [
    "Question: How do I boil an egg?\nAnswer:",
    "The developer argued with the designer because",
    "A man is standing in front of a camera. He ",  # trailing space moves to the continuation
    "Q: What is the capital of France?\nA:",
]
ENDINGS = [
    "Put it in boiling water for nine minutes.",
    "Paris",
    "she did not like the design.",
    "starts playing a harmonica for the camera and then the dog jumps over the lazy fox.",
    "x",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(tmp_path_factory.mktemp("tiny"))
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _requests() -> list[tuple[str, str]]:
    reqs = [(c, " " + e) for c in CONTEXTS for e in ENDINGS]
    reqs += [("", "The quick brown fox."), ("", "A dog."), ("", "The quick brown fox.")]  # empty context, duplicate
    return reqs


@pytest.fixture(scope="module")
def reference(tiny: tuple[object, object]) -> list[loglik.Scored]:
    model, tok = tiny
    return loglik.loglik_reference(model, tok, _requests())


@pytest.mark.parametrize(("reuse", "batch_tokens"), [(True, 16), (True, 4096), (False, 16), (False, 4096)])
def test_batched_equals_reference(tiny: tuple[object, object], reference: list[loglik.Scored], reuse: bool,
                                  batch_tokens: int) -> None:
    model, tok = tiny
    reqs = _requests()
    ref = reference
    got = loglik.loglikelihood(model, tok, reqs, batch_tokens=batch_tokens, reuse_context=reuse)
    for r, g in zip(ref, got, strict=True):
        assert g.logprob == pytest.approx(r.logprob, abs=1e-5, rel=1e-5)
        assert g.is_greedy == r.is_greedy
        assert g.n_tokens == r.n_tokens
    # Identical decisions for every context's multiple-choice question.
    for i in range(len(CONTEXTS)):
        block = slice(i * len(ENDINGS), (i + 1) * len(ENDINGS))
        ref_lp = [s.logprob for s in ref[block]]
        got_lp = [s.logprob for s in got[block]]
        assert got_lp.index(max(got_lp)) == ref_lp.index(max(ref_lp))


def test_truncation_from_the_left_matches_reference(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    reqs = [(CONTEXTS[0] * 3, " " + e) for e in ENDINGS[:3]]
    ref = loglik.loglik_reference(model, tok, reqs, max_length=24)
    got = loglik.loglikelihood(model, tok, reqs, max_length=24, batch_tokens=32)
    assert [g.logprob for g in got] == pytest.approx([r.logprob for r in ref], abs=1e-5)


def test_encode_pair_moves_trailing_space_and_uses_prefix_for_empty_context(tiny: tuple[object, object]) -> None:
    _, tok = tiny
    ctx, cont = loglik.encode_pair(tok, "He ", "starts")
    assert ctx == tok.encode("He") and ctx + cont == tok.encode("He starts")
    ctx, cont = loglik.encode_pair(tok, "", "A dog.")
    assert ctx == [loglik.prefix_token_id(tok)] and cont == tok.encode("A dog.", add_special_tokens=False)


def test_rolling_windows_cover_every_token_once() -> None:
    tokens = list(range(100, 125))
    windows = loglik.rolling_windows(tokens, prefix=0, max_length=8)
    predicted = [t for _, cont in windows for t in cont]
    assert predicted == tokens
    for ctx, cont in windows:
        assert len(ctx) + len(cont) - 1 <= 8
    assert windows[0][0] == [0]


def test_rolling_loglikelihood_equals_sum_of_reference_windows(tiny: tuple[object, object]) -> None:
    model, tok = tiny
    text = " ".join(CONTEXTS + ENDINGS)
    got = loglik.loglikelihood_rolling(model, tok, [text], max_length=16)[0]
    tokens = tok(text)["input_ids"]
    windows = loglik.rolling_windows(tokens, loglik.prefix_token_id(tok), 16)
    expected = 0.0
    with torch.inference_mode():
        for ctx, cont in windows:
            inp = (ctx + cont)[:-1]
            logp = torch.log_softmax(model(torch.tensor([inp])).logits[0], -1)[-len(cont):]
            expected += float(logp.gather(1, torch.tensor(cont)[:, None]).sum())
    assert got == pytest.approx(expected, abs=1e-4)


def test_tiny_model_dir_round_trips(tmp_path: Path) -> None:
    path = tiny_model_dir(tmp_path / "m")
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
