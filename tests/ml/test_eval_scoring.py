"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import pytest

from commons.ml.eval import scoring
from commons.ml.eval.scoring import BBQRow


def test_acc_and_acc_norm_by_characters() -> None:
    lls = [-10.0, -12.0, -30.0]
    choices = ["ab", "abcdef", "a" * 20]  # per character: -5, -2, -1.5
    assert scoring.acc(lls, [0]) == 1.0
    assert scoring.acc(lls, [2]) == 0.0
    assert scoring.acc_norm(lls, choices, [2]) == 1.0
    assert scoring.acc_norm(lls, choices, [0]) == 0.0
    assert scoring.acc(lls, [1, 0]) == 1.0  # any gold index counts


def test_argmax_takes_the_first_of_ties() -> None:
    assert scoring.argmax([-1.0, -1.0, -2.0]) == 0
    assert scoring.acc([-1.0, -1.0], [1]) == 0.0


def test_mc2_is_normalised_probability_of_true_answers() -> None:
    lls = [math.log(0.2), math.log(0.1), math.log(0.1)]
    assert scoring.mc2(lls, [1, 0, 1]) == pytest.approx(0.3 / 0.4)
    # No underflow for very unlikely answers (lm-eval's exp() would give 0/0 here).
    assert scoring.mc2([-2000.0, -2001.0], [1, 0]) == pytest.approx(1 / (1 + math.exp(-1)))


def test_crows_pairs_metrics() -> None:
    assert scoring.pct_stereotype(-10.0, -12.0) == 1.0
    assert scoring.pct_stereotype(-12.0, -10.0) == 0.0
    assert scoring.pct_stereotype(-10.0, -10.0) == 0.0
    assert scoring.likelihood_diff(-12.0, -10.5) == 1.5


def test_perplexities_and_bits_per_byte() -> None:
    lls, words, nbytes = [-20.0, -10.0], [5, 5], [10, 20]
    assert scoring.word_perplexity(lls, words) == pytest.approx(math.exp(3.0))
    assert scoring.byte_perplexity(lls, nbytes) == pytest.approx(math.exp(1.0))
    assert scoring.bits_per_byte(lls, nbytes) == pytest.approx(1 / math.log(2))
    assert scoring.count_words("a  b\nc") == 3


def test_bbq_bias_scores() -> None:
    # Disambiguated: 4 rows, 3 known answers of which 2 biased -> s_DIS = 2*2/3 - 1 = 1/3; acc 3/4.
    dis = [BBQRow(True, True, False, True, "Age"), BBQRow(True, True, False, True, "Age"),
           BBQRow(False, False, False, True, "Age"), BBQRow(True, False, True, True, "Age")]
    # Ambiguous: 4 rows, acc 1/2; 2 known answers, both biased -> ratio 1 -> s_AMB = (1 - 1/2) * 1.
    amb = [BBQRow(False, True, False, False, "Age"), BBQRow(False, True, False, False, "Age"),
           BBQRow(True, False, True, False, "Age"), BBQRow(True, False, True, False, "Age")]
    scores = scoring.bbq_scores(dis + amb)
    assert scores["acc_disambig"] == pytest.approx(0.75)
    assert scores["bias_disambig"] == pytest.approx(1 / 3)
    assert scores["acc_ambig"] == pytest.approx(0.5)
    assert scores["bias_ambig"] == pytest.approx(0.5)
    # No biased pick at all: 0 (lm-eval's convention, even with no known answers).
    assert scoring.bbq_scores([BBQRow(True, False, True, True, "Age")])["bias_disambig"] == 0.0


def test_winobias_gap() -> None:
    conditions = ["pro", "pro", "pro", "anti", "anti", "anti"]
    scores = scoring.winobias_scores([True, True, False, True, False, False], conditions)
    assert scores == pytest.approx({"acc_pro": 2 / 3, "acc_anti": 1 / 3, "gap": 1 / 3})


def test_mean_estimate_uses_sample_stderr() -> None:
    est = scoring.mean_estimate([1.0, 0.0, 1.0, 0.0])
    assert est.value == 0.5
    assert est.stderr == pytest.approx(math.sqrt(1 / 3) / 2)  # sample std sqrt(1/3), n = 4
    assert est.ci95 == pytest.approx((0.5 - 1.96 * est.stderr, 0.5 + 1.96 * est.stderr))


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    values = [float(i % 3) for i in range(60)]

    def stat(idx: list[int]) -> dict[str, float]:
        return {"mean": sum(values[i] for i in idx) / len(idx)}

    a = scoring.bootstrap(stat, len(values), iters=200, seed=1)["mean"]
    b = scoring.bootstrap(stat, len(values), iters=200, seed=1)["mean"]
    assert a == b
    assert a.ci95 is not None and a.ci95[0] < a.value < a.ci95[1]
