"""Paired bootstrap, McNemar and the verdict sentence, against hand-computed and reference values."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streamguard.report.stats import (
    _weighted_aucs, compare_sentence, mcnemar, outcome, paired_bootstrap_auc_diff,
)


def _scores(n: int, seed: int, signal_a: float, signal_b: float):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    a = np.clip(labels * signal_a + rng.random(n) * (1 - signal_a), 0, 1)
    b = np.clip(labels * signal_b + rng.random(n) * (1 - signal_b), 0, 1)
    return labels, a, b


# --- paired bootstrap ---------------------------------------------------------------------------

def test_identical_models_give_zero_difference():
    labels, a, _ = _scores(300, 0, 0.3, 0.0)
    r = paired_bootstrap_auc_diff(labels, a, a.copy(), n_boot=300)
    assert r["diff"] == 0.0 and r["ci_low"] <= 0.0 <= r["ci_high"]
    assert r["ci_low"] == r["ci_high"] == 0.0  # paired: every resample scores both the same
    assert r["p_value"] == 1.0 and r["n_boot"] == r["n_valid"] == 300


def test_clearly_better_model_has_interval_above_zero():
    labels, a, b = _scores(400, 1, 0.5, 0.05)
    r = paired_bootstrap_auc_diff(labels, a, b, n_boot=500)
    assert r["diff"] == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    assert 0 < r["ci_low"] < r["diff"] < r["ci_high"]
    assert r["p_value"] < 0.01
    swapped = paired_bootstrap_auc_diff(labels, b, a, n_boot=500)
    assert swapped["diff"] == pytest.approx(-r["diff"]) and swapped["ci_high"] < 0


def test_same_seed_same_result_other_seed_other_interval():
    labels, a, b = _scores(200, 2, 0.3, 0.2)
    first = paired_bootstrap_auc_diff(labels, a, b, n_boot=200, seed=7)
    assert paired_bootstrap_auc_diff(labels, a, b, n_boot=200, seed=7) == first
    other = paired_bootstrap_auc_diff(labels, a, b, n_boot=200, seed=8)
    assert other["diff"] == first["diff"] and other["ci_low"] != first["ci_low"]


def test_bootstrap_matches_a_slow_reference_with_the_same_draws():
    """Explicit resamples scored with roc_auc_score, drawn in the documented order (positives, then
    negatives, per block of resamples), give the same interval and p-value."""
    labels, a, b = _scores(40, 3, 0.15, 0.1)
    a = np.round(a, 1)  # ties between positives and negatives
    n_boot, alpha = 300, 0.1
    rng = np.random.default_rng(11)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    pos_draws = rng.integers(0, pos.size, (n_boot, pos.size))
    neg_draws = rng.integers(0, neg.size, (n_boot, neg.size))
    diffs = []
    for i in range(n_boot):
        idx = np.r_[pos[pos_draws[i]], neg[neg_draws[i]]]
        diffs.append(roc_auc_score(labels[idx], a[idx]) - roc_auc_score(labels[idx], b[idx]))
    diffs = np.array(diffs)
    diff = roc_auc_score(labels, a) - roc_auc_score(labels, b)
    flips = np.mean(diffs <= 0) if diff > 0 else np.mean(diffs >= 0)

    r = paired_bootstrap_auc_diff(labels, a, b, n_boot=n_boot, seed=11, alpha=alpha)
    assert r["ci_low"] == pytest.approx(np.quantile(diffs, alpha / 2))
    assert r["ci_high"] == pytest.approx(np.quantile(diffs, 1 - alpha / 2))
    assert r["p_value"] == pytest.approx(min(1.0, 2 * flips))
    assert 0 < r["p_value"] < 1  # the case exercises the flip count, not just an edge


def test_weighted_auc_equals_roc_auc_score_on_the_expanded_resample():
    rng = np.random.default_rng(4)
    pos, neg = np.round(rng.random(30), 1), np.round(rng.random(50) * 0.8, 1)  # many ties
    w_pos, w_neg = rng.integers(0, 4, (5, 30)), rng.integers(0, 4, (5, 50))
    got = _weighted_aucs(pos, neg, w_pos, w_neg)
    for i in range(5):
        y = np.r_[np.ones(w_pos[i].sum()), np.zeros(w_neg[i].sum())]
        p = np.r_[np.repeat(pos, w_pos[i]), np.repeat(neg, w_neg[i])]
        assert got[i] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_stratified_resamples_all_hold_both_classes():
    # a single positive: an unstratified bootstrap would miss it in about 37 % of resamples
    labels = np.r_[1, np.zeros(30, int)]
    a, b = np.linspace(1, 0, 31), np.linspace(0, 1, 31)
    r = paired_bootstrap_auc_diff(labels, a, b, n_boot=200)
    assert r["n_valid"] == 200 and r["diff"] == pytest.approx(1.0)


def test_bootstrap_undefined_cases():
    r = paired_bootstrap_auc_diff([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], n_boot=10)
    assert r["diff"] is None and r["ci_low"] is None and r["p_value"] is None and r["n_valid"] == 0
    assert paired_bootstrap_auc_diff([0, 1], [0.1, float("nan")], [0.1, 0.2], n_boot=10)["diff"] is None
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_auc_diff([0, 1], [0.1, 0.2], [0.1], n_boot=10)


def test_bootstrap_is_fast_at_report_size():
    labels, a, b = _scores(3000, 5, 0.3, 0.2)
    start = time.perf_counter()
    r = paired_bootstrap_auc_diff(labels, a, b, n_boot=2000)
    assert time.perf_counter() - start < 5.0  # measured ~0.15-0.4 s on one shared core
    assert r["n_valid"] == 2000


def test_seed_rows_average_aucs_on_shared_resamples():
    labels, a, b = _scores(300, 6, 0.3, 0.1)
    _, a2, _ = _scores(300, 7, 0.2, 0.1)
    a2 = np.clip(labels * 0.2 + (a2 - a2.mean()) * 0.5 + 0.4, 0, 1)
    rows = np.stack([a, a2])
    r = paired_bootstrap_auc_diff(labels, rows, b, n_boot=400, seed=3)
    mean_auc = np.mean([roc_auc_score(labels, a), roc_auc_score(labels, a2)])
    assert r["diff"] == pytest.approx(mean_auc - roc_auc_score(labels, b), abs=1e-12)
    assert r["n_seeds"] == 2 and r["n_valid"] == 400
    # the rows see the resamples a one-row call with the same seed sees: two copies of a give a's result
    twice = paired_bootstrap_auc_diff(labels, np.stack([a, a]), b, n_boot=400, seed=3)
    alone = paired_bootstrap_auc_diff(labels, a, b, n_boot=400, seed=3)
    for key in ("diff", "ci_low", "ci_high", "p_value"):
        assert twice[key] == pytest.approx(alone[key], abs=1e-12)


def test_seed_rows_match_a_slow_reference_with_the_same_draws():
    labels, a, b = _scores(40, 12, 0.2, 0.1)
    _, a2, _ = _scores(40, 13, 0.25, 0.1)
    a2 = np.round(np.clip(labels * 0.25 + a2 * 0.75, 0, 1), 1)  # ties
    n_boot = 250
    rng = np.random.default_rng(4)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    pos_draws = rng.integers(0, pos.size, (n_boot, pos.size))
    neg_draws = rng.integers(0, neg.size, (n_boot, neg.size))
    diffs = []
    for i in range(n_boot):
        idx = np.r_[pos[pos_draws[i]], neg[neg_draws[i]]]
        auc_b = roc_auc_score(labels[idx], b[idx])
        diffs.append(np.mean([roc_auc_score(labels[idx], x[idx]) - auc_b for x in (a, a2)]))
    r = paired_bootstrap_auc_diff(labels, np.stack([a, a2]), b, n_boot=n_boot, seed=4)
    assert r["ci_low"] == pytest.approx(np.quantile(diffs, 0.025))
    assert r["ci_high"] == pytest.approx(np.quantile(diffs, 0.975))


def test_one_seed_row_equals_the_1d_call():
    labels, a, b = _scores(200, 8, 0.3, 0.2)
    flat = paired_bootstrap_auc_diff(labels, a, b, n_boot=200, seed=5)
    row = paired_bootstrap_auc_diff(labels, a[None, :], b, n_boot=200, seed=5)
    assert row.pop("n_seeds") == 1 and row == flat
    assert "n_seeds" not in flat


def test_seed_rows_identical_to_b_give_exactly_zero():
    labels, a, _ = _scores(200, 9, 0.3, 0.0)
    r = paired_bootstrap_auc_diff(labels, np.stack([a, a, a]), a, n_boot=100)
    assert (r["diff"], r["ci_low"], r["ci_high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)


def test_seed_rows_shape_errors_and_undefined():
    labels, a, b = _scores(50, 10, 0.3, 0.2)
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_auc_diff(labels, np.stack([a[:-1], a[:-1]]), b, n_boot=10)
    with pytest.raises(ValueError, match=r"\[n_seeds, n\]"):
        paired_bootstrap_auc_diff(labels, a.reshape(1, 1, -1), b, n_boot=10)
    with pytest.raises(ValueError, match="at least one row"):
        paired_bootstrap_auc_diff(labels, np.empty((0, 50)), b, n_boot=10)
    bad = np.stack([a, np.where(np.arange(50) == 3, np.nan, a)])
    assert paired_bootstrap_auc_diff(labels, bad, b, n_boot=10)["diff"] is None


def test_seed_rows_are_fast_at_report_size():
    labels, a, b = _scores(3000, 11, 0.3, 0.2)
    rows = np.stack([a, np.roll(a, 1), np.roll(a, 2)])
    start = time.perf_counter()
    paired_bootstrap_auc_diff(labels, rows, b, n_boot=2000)
    assert time.perf_counter() - start < 10.0  # about three times the one-row cost


# --- McNemar ----------------------------------------------------------------------------------

def _discordant(b: int, c: int, both_right: int = 5, both_wrong: int = 3):
    """Labels and predictions with ``b`` samples only a gets right and ``c`` only b gets right."""
    labels = np.ones(b + c + both_right + both_wrong, int)
    pred_a = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)].astype(int)
    pred_b = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)].astype(int)
    return labels, pred_a, pred_b


def test_mcnemar_exact_branch():
    r = mcnemar(*_discordant(10, 2))
    # two-sided binomial, n=12: 2 * P(X <= 2) = 2 * (1 + 12 + 66) / 4096
    assert (r["b"], r["c"], r["method"]) == (10, 2, "exact")
    assert r["statistic"] == 2.0 and r["p_value"] == pytest.approx(158 / 4096)
    assert mcnemar(*_discordant(12, 12))["p_value"] == pytest.approx(1.0)
    assert mcnemar(*_discordant(20, 4))["method"] == "exact"  # b + c = 24


def test_mcnemar_chi_square_branch():
    r = mcnemar(*_discordant(30, 15))
    stat = (15 - 1) ** 2 / 45
    assert (r["b"], r["c"], r["method"]) == (30, 15, "chi2")
    assert r["statistic"] == pytest.approx(196 / 45)
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi-square sf, 1 dof
    edge = mcnemar(*_discordant(20, 5))  # b + c = 25: (15 - 1)^2 / 25 = 7.84
    assert edge["method"] == "chi2" and edge["statistic"] == pytest.approx(7.84)
    assert edge["p_value"] == pytest.approx(math.erfc(math.sqrt(3.92)))


def test_mcnemar_counts_correctness_not_predictions():
    # both labels: a is right on samples 0 and 3, b on 1 and 3
    r = mcnemar([1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 1, 1])
    assert (r["b"], r["c"]) == (1, 1)
    none = mcnemar([1, 0], [1, 0], [1, 0])
    assert (none["b"], none["c"], none["p_value"]) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="0/1"):
        mcnemar([1, 0], [0.7, 0.2], [1, 0])
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar([1, 0], [1], [1, 0])


# --- verdict sentence -------------------------------------------------------------------------

BOOT = {"diff": 0.031, "ci_low": 0.012, "ci_high": 0.050, "p_value": 0.002, "n_boot": 2000,
        "n_valid": 2000, "alpha": 0.05}


def test_compare_sentence_better():
    assert compare_sentence("fusion", "TF-IDF + LR", BOOT, {"p_value": 0.04}) == (
        "fusion vs TF-IDF + LR: ROC-AUC +0.031 (95 % CI +0.012 to +0.050, p=0.002): better; "
        "McNemar p=0.04 at the chosen threshold."
    )


def test_compare_sentence_not_distinguishable_and_worse():
    boot = dict(BOOT, diff=0.01, ci_low=-0.004, ci_high=0.025, p_value=0.21)
    assert compare_sentence("a", "b", boot, {"p_value": 0.5}) == (
        "a vs b: ROC-AUC +0.010 (95 % CI -0.004 to +0.025, p=0.21): not distinguishable; "
        "McNemar p=0.50 at the chosen threshold."
    )
    assert "not distinguishable" in compare_sentence("a", "b", dict(boot, ci_low=0.0), None)
    worse = dict(BOOT, diff=-0.03, ci_low=-0.05, ci_high=-0.01, p_value=0.0)
    assert compare_sentence("a", "b", worse, None) == (
        "a vs b: ROC-AUC -0.030 (95 % CI -0.050 to -0.010, p<0.001): worse."
    )


def test_compare_sentence_from_real_results_and_undefined():
    labels, a, b = _scores(400, 1, 0.5, 0.05)
    boot = paired_bootstrap_auc_diff(labels, a, b, n_boot=200, alpha=0.1)
    pred_a, pred_b = (a >= 0.5).astype(int), (b >= 0.5).astype(int)
    text = compare_sentence("a", "b", boot, mcnemar(labels, pred_a, pred_b))
    assert text.startswith("a vs b: ROC-AUC +") and "90 % CI" in text and "): better; McNemar p" in text
    assert "p<0.01" in text  # no flip in 200 resamples: p below the resolution 2/200
    undefined = paired_bootstrap_auc_diff([1, 1], [0.1, 0.2], [0.2, 0.1], n_boot=5)
    assert compare_sentence("a", "b", undefined, None) == (
        "a vs b: ROC-AUC difference undefined (a class is missing or a score is not finite)."
    )


def test_compare_sentence_with_per_seed_mcnemar():
    per_seed = [{"seed": 42, "p_value": 0.04}, {"seed": 7, "p_value": 0.0002}]
    assert compare_sentence("fusion (mean over seeds 42, 7)", "TF-IDF + LR", BOOT, per_seed) == (
        "fusion (mean over seeds 42, 7) vs TF-IDF + LR: ROC-AUC +0.031 (95 % CI +0.012 to +0.050, p=0.002): "
        "better; McNemar per seed at each side's chosen threshold: p=0.04 (seed 42), p<0.001 (seed 7)."
    )
    assert compare_sentence("a", "b", BOOT, []) == compare_sentence("a", "b", BOOT, None)


def test_outcome_follows_the_interval():
    assert outcome(BOOT) == "better"
    assert outcome(dict(BOOT, ci_low=-0.1, ci_high=-0.01)) == "worse"
    assert outcome(dict(BOOT, ci_low=0.0)) == "not distinguishable"
    assert outcome({"diff": None}) is None
