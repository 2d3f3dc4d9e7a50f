"""Our scores equal lm-evaluation-harness's on the same rows (its own task configs, a small model).

Accuracies must be identical, likelihood metrics (and every per-choice log-likelihood) within 1e-4
relative, and the stderr of every mean metric equal to lm-eval's. Skipped without lm-eval (a dev
dependency) or without the benchmark data (COMMONS_EVAL_DATA, default ../shared/data).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lm_eval")

from commons.ml.eval import lmeval_compat
from commons.ml.eval.harness import DatasetSource, RunSettings, load_model, run_task
from commons.ml.eval.tasks import builtin_task, load_docs, subsample
from commons.ml.eval.tiny import tiny_model_dir

SHARED_DATA = Path(os.environ.get("COMMONS_EVAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
# CI: 10-40 rows per task; COMMONS_EVAL_LMEVAL_FULL=1: a few hundred (minutes on two busy cores).
FULL = os.environ.get("COMMONS_EVAL_LMEVAL_FULL") == "1"
SIZES = {"hellaswag": 300, "piqa": 300, "truthfulqa_mc1": 150, "truthfulqa_mc2": 150, "crows_pairs": 300, "bbq": 300}
if not FULL:
    SIZES = {"hellaswag": 40, "piqa": 40, "truthfulqa_mc1": 10, "truthfulqa_mc2": 10, "crows_pairs": 40, "bbq": 36}
PERPLEXITY = {"wikitext2": 6 if FULL else 1}
WINDOW = 128  # rolling-window length for the perplexity task: several windows per article
LIKELIHOOD_METRICS = {"mc2", "likelihood_diff", "word_perplexity", "byte_perplexity", "bits_per_byte"}
THEIR_NAME = {"mc1": "acc", "mc2": "acc", "acc_ambig": "accuracy_amb", "acc_disambig": "accuracy_disamb",
              "bias_ambig": "amb_bias_score", "bias_disambig": "disamb_bias_score"}


def _rows(name: str, n: int) -> list[dict[str, object]]:
    task = builtin_task(name)
    rows = load_docs(task, SHARED_DATA / str(task.dataset))
    return [rows[i] for i in subsample(len(rows), n, "spread")]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the benchmark data (COMMONS_EVAL_DATA)")
def test_scores_equal_lm_eval(tmp_path: Path) -> None:
    docs = {name: _rows(name, n) for name, n in {**SIZES, **PERPLEXITY}.items()}
    texts = [str(d.get("query") or d.get("goal") or d.get("question") or d.get("sent_more") or d.get("context"))
             for name, rows in docs.items() if name in SIZES for d in rows[:40]]
    model_dir = tiny_model_dir(tmp_path / "model", texts, vocab_size=512)
    model, tokenizer = load_model(model_dir, RunSettings())
    with warnings.catch_warnings():  # lm-eval's BBQ aggregation averages empty per-category slices
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = lmeval_compat.run_lmeval(
            model_dir, {name: lmeval_compat.lmeval_docs(name, docs[name]) for name in SIZES}, tmp_path,
            batch_size=8, bootstrap_iters=10)
        theirs |= lmeval_compat.run_lmeval(
            model_dir, {name: lmeval_compat.lmeval_docs(name, docs[name]) for name in PERPLEXITY}, tmp_path,
            batch_size=8, max_length=WINDOW)
    checked = 0
    for name, n in {**SIZES, **PERPLEXITY}.items():
        task = builtin_task(name)
        settings = RunSettings(limit=n, sample="spread", keep_samples=True, bootstrap_iters=0, batch_tokens=1024,
                               max_length=WINDOW if name in PERPLEXITY else None)
        ours = run_task(task, DatasetSource(SHARED_DATA / str(task.dataset)), model, tokenizer, settings)
        assert ours.samples is not None and ours.n == n
        ours_ll = [s["logprobs"] if "logprobs" in s else [s["logprob"]] for s in ours.samples]
        assert len(ours_ll) == len(theirs[name]["logprobs"]) == n
        for a, b in zip(ours_ll, theirs[name]["logprobs"], strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-4), name
        for metric in ours.metrics:
            their_name = THEIR_NAME.get(metric.name, metric.name)
            if metric.name == "keyword_refusal_rate":
                continue
            other = theirs[name]["metrics"][their_name]
            if metric.name in LIKELIHOOD_METRICS:
                assert metric.value == pytest.approx(other, rel=1e-4), (name, metric.name)
            else:
                assert metric.value == other, (name, metric.name)  # accuracies: identical
            if metric.method == "mean":  # lm-eval's closed-form stderr of a mean
                assert metric.stderr == pytest.approx(theirs[name]["stderr"][their_name], rel=1e-6), (name, metric)
            checked += 1
    assert checked >= 12
