"""Report-card rules: groups, comparability, which way is worse, the threshold's scale, significance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commons.evals.report import Score, category, compare, is_regression, latest, report_card

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def score(task: str = "hellaswag", metric: str = "acc_norm", value: float = 0.5, *, better: str | None = "higher",
          ideal: float | None = None, stderr: float | None = 0.01, settings_hash: str = "s1", sha: str = "a" * 40,
          when: datetime = T0, written_to: str | None = "c" * 40, headline: bool = True, subgroup: str = "",
          cat: str = "capability") -> Score:
    return Score(task=task, metric=metric, value=value, stderr=stderr, ci_low=value - 0.02, ci_high=value + 0.02,
                 n=100, n_total=100, better=better, ideal=ideal, headline=headline, category=cat, model_sha=sha,
                 dataset_repo="benchmarks/" + task, dataset_sha="d" * 40, task_version="1", harness_version="1",
                 settings_hash=settings_hash, written_to=written_to, measured_at=when, subgroup=subgroup)


@pytest.mark.parametrize(("task", "task_type", "metrics", "group"), [
    ("hellaswag", "multiple_choice", ["acc", "acc_norm"], "capability"),
    ("bbq", "multiple_choice", ["acc"], "bias"),
    ("xstest", "generation_refusal", ["refusal_rate"], "safety"),
    ("my_refusals", "generation_refusal", ["refusal_rate"], "safety"),
    ("my_pairs", "loglikelihood_pairs", ["pct_stereotype"], "bias"),
    ("my_quiz", "multiple_choice", ["acc"], "capability"),
    ("my_gap", "multiple_choice", ["acc", "gap"], "bias"),
])
def test_groups(task: str, task_type: str, metrics: list[str], group: str) -> None:
    assert category(task, task_type, metrics) == group


@pytest.mark.parametrize(("child", "parent", "kw", "flagged"), [
    (0.47, 0.50, {"better": "higher"}, True),      # 3 points of accuracy lost
    (0.49, 0.50, {"better": "higher"}, False),     # within the threshold
    (0.60, 0.50, {"better": "higher"}, False),     # better
    (32.0, 30.0, {"better": "lower"}, True),       # perplexity up 6.7 % (relative above 1)
    (30.3, 30.0, {"better": "lower"}, False),      # up 1 %
    (0.60, 0.55, {"better": None, "ideal": 0.5}, True),   # further from no bias
    (0.52, 0.55, {"better": None, "ideal": 0.5}, False),  # closer to no bias
    (0.45, 0.55, {"better": None, "ideal": 0.5}, False),  # as far, on the other side
])
def test_which_way_is_worse(child: float, parent: float, kw: dict[str, object], flagged: bool) -> None:
    assert is_regression(score(value=child, **kw), score(value=parent, **kw), 0.02) is flagged  # type: ignore[arg-type]


def test_significance_uses_both_standard_errors() -> None:
    assert compare(score(value=0.47, stderr=0.01), score(value=0.50, stderr=0.01), 0.02).significant
    assert not compare(score(value=0.47, stderr=0.05), score(value=0.50, stderr=0.05), 0.02).significant
    delta = compare(score(value=0.47), score(value=0.50), 0.02)
    assert delta.diff == pytest.approx(-0.03) and delta.regression


def test_only_scores_measured_the_same_way_are_compared() -> None:
    mine = [score(value=0.40), score(task="piqa", value=0.6, settings_hash="s2")]
    parents = [score(value=0.50), score(task="piqa", value=0.7, settings_hash="s1")]
    card = report_card(mine, parents, "org/base", 0.02)
    hella, piqa = card.groups["capability"]
    assert hella.delta is not None and hella.delta.regression
    assert piqa.delta is None and piqa.parent_note and "other settings" in piqa.parent_note
    assert [line.score.task for line in card.regressions] == ["hellaswag"]
    assert card.groups["bias"] == [] and not card.empty


def test_the_card_shows_the_newest_score_the_card_has() -> None:
    old = score(value=0.40, when=T0)
    new = score(value=0.45, when=T0 + timedelta(days=1))
    proposed = score(value=0.10, when=T0 + timedelta(days=2), written_to="refs/pr/3")
    assert latest([old, new, proposed]) == [new]  # a pull request's result waits for its merge
    assert latest([old, proposed]) == [old]
    assert latest([proposed]) == [proposed]
    naive = score(value=0.5, when=datetime(2026, 11, 3))  # SQLite hands back naive datetimes
    assert latest([new, naive]) == [naive]


def test_subgroups_stay_out_of_the_card() -> None:
    card = report_card([score(), score(metric="acc", headline=False, subgroup="bias_type=gender")], [], None, 0.02)
    assert [line.score.subgroup for line in card.groups["capability"]] == [""]
    assert card.parent is None and card.regressions == []
