"""Metrics: values against hand-computed cases, robustness, threshold tuning."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, matthews_corrcoef

from streamguard.errors import ConfigError
from streamguard.io import dumps_strict
from streamguard.train.metrics import (
    METRIC_NAMES, PAIRWISE_NAMES, THRESHOLD_POLICIES, choose_threshold, compute_metrics, flagged_fraction,
    pairwise_metrics, precision_at_top_k, reduce_predictions, tune_threshold, vd_s,
)


def test_values_on_a_hand_checked_case():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    probs = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.7]
    m = compute_metrics(labels, probs, threshold=0.5)
    # predictions 1,1,0,1,0,0,0,1 -> tp=3 fp=1 fn=1 tn=3
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["mcc"] == pytest.approx((3 * 3 - 1 * 1) / 16)
    # 14 of the 16 positive/negative pairs are ranked correctly (0.3 < 0.6 and 0.3 < 0.4 are not)
    assert m["roc_auc"] == pytest.approx(14 / 16)
    # average precision: ranked by prob, the positives sit at ranks 1, 2, 3 and 6 -> (1 + 1 + 1 + 4/6) / 4
    assert m["pr_auc"] == pytest.approx(11 / 12)
    assert list(m) == list(METRIC_NAMES)


def test_threshold_changes_predictions():
    labels, probs = [1, 0, 1, 0], [0.45, 0.1, 0.9, 0.3]
    assert compute_metrics(labels, probs, 0.5)["recall"] == 0.5
    assert compute_metrics(labels, probs, 0.4)["recall"] == 1.0


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [1, 1, 1, 1]])
def test_single_class_gives_none_not_nan_or_crash(labels):
    m = compute_metrics(labels, [0.1, 0.7, 0.4, 0.9])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["accuracy"] is not None
    text = dumps_strict(m)
    assert "NaN" not in text and json.loads(text)["roc_auc"] is None


def test_nonfinite_probs_and_empty_input_give_all_none():
    assert all(v is None for v in compute_metrics([0, 1], [float("nan"), 0.5]).values())
    assert all(v is None for v in compute_metrics([], []).values())
    with pytest.raises(ValueError, match="differ in length"):
        compute_metrics([0, 1], [0.5])


def test_tune_threshold_maximizes_f1():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    t = tune_threshold(labels, probs)
    best = compute_metrics(labels, probs, t)["f1"]
    brute = max(f1_score(labels, probs >= c) for c in np.unique(probs))
    assert best == pytest.approx(brute)
    assert best > compute_metrics(labels, probs, 0.5)["f1"]


def test_tune_threshold_falls_back_when_undefined():
    assert tune_threshold([1, 1], [0.2, 0.3]) == 0.5
    assert tune_threshold([0, 1], [float("nan"), 0.3]) == 0.5


def test_reduce_predictions_concatenates_in_order():
    chunks = [(torch.tensor([1, 0]), torch.tensor([0.9, 0.2])), (torch.tensor([1.0]), torch.tensor([0.6]))]
    labels, probs = reduce_predictions(chunks)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 1]
    assert probs.dtype == np.float64 and probs.tolist() == pytest.approx([0.9, 0.2, 0.6])
    empty_labels, empty_probs = reduce_predictions([])
    assert empty_labels.size == 0 and empty_probs.size == 0


# --- VD-S -------------------------------------------------------------------------------------

def _vds_case(n_tied_negatives: int) -> tuple[np.ndarray, np.ndarray]:
    """1000 negatives (so 0.5 % allows 5 false positives) and 100 positives.

    Positives: 40 at 0.95, 20 at 0.9, 40 at 0.3. Negatives: ``n_tied_negatives`` at 0.9, the rest
    spread below 0.8.
    """
    rest = 1000 - n_tied_negatives
    neg = np.r_[np.full(n_tied_negatives, 0.9), np.linspace(0.0, 0.8, rest)]
    pos = np.r_[np.full(40, 0.95), np.full(20, 0.9), np.full(40, 0.3)]
    return np.r_[np.zeros(1000, int), np.ones(100, int)], np.r_[neg, pos]


def test_vd_s_uses_the_whole_false_positive_budget():
    labels, probs = _vds_case(5)
    # threshold 0.9 flags exactly 5 negatives (0.5 %) and 60 positives -> FNR 0.4
    assert vd_s(labels, probs) == pytest.approx(0.4)
    # the next lower score (0.8, a negative) would be a sixth false positive; a budget of 6 admits it
    # but catches no more positives, and only a budget reaching the 0.3 positives lowers the FNR
    assert vd_s(labels, probs, max_fpr=0.006) == pytest.approx(0.4)
    assert vd_s(labels, probs, max_fpr=1.0) == pytest.approx(0.0)


def test_vd_s_does_not_split_a_tie_group_over_budget():
    labels, probs = _vds_case(6)
    # six negatives tie with 20 positives at 0.9: flagging the group costs 0.6 % > 0.5 %, so the
    # threshold moves above it and only the 40 positives at 0.95 are caught -> FNR 0.6
    assert vd_s(labels, probs) == pytest.approx(0.6)


def test_vd_s_small_cases_and_undefined():
    assert vd_s([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], max_fpr=0.0) == pytest.approx(0.5)
    # the top score is a negative: nothing can be flagged without a false positive
    assert vd_s([0, 1, 1, 0], [0.9, 0.8, 0.7, 0.1], max_fpr=0.0) == 1.0
    assert vd_s([1, 1], [0.2, 0.9]) is None and vd_s([0, 0], [0.2, 0.9]) is None
    assert vd_s([0, 1], [float("nan"), 0.5]) is None and vd_s([], []) is None
    with pytest.raises(ValueError):
        vd_s([0, 1], [0.1, 0.2], max_fpr=1.5)


# --- precision at top k -------------------------------------------------------------------------

def test_precision_at_top_k_counts_the_ceiling_of_fraction_times_n():
    labels = [1, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    probs = [0.9, 0.85, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05, 0.6, 0.4]
    # k = ceil(0.25 * 10) = 3: the samples scored 0.9, 0.85, 0.8 -> 2 of 3 vulnerable
    assert precision_at_top_k(labels, probs, 0.25) == pytest.approx(2 / 3)
    assert precision_at_top_k(labels, probs, 0.01) == 1.0  # k = 1 (never 0)
    assert precision_at_top_k(labels, probs, 1.0) == pytest.approx(0.4)
    # 0.07 * 100 is 7.000000000000001 in floating point; k must still be 7, not 8
    y = np.r_[np.ones(7, int), np.zeros(93, int)]
    assert precision_at_top_k(y, np.linspace(1.0, 0.0, 100), 0.07) == 1.0


def test_precision_at_top_k_breaks_ties_by_input_order():
    probs = [0.9, 0.5, 0.5, 0.1]
    assert precision_at_top_k([1, 0, 1, 0], probs, 0.5) == 0.5  # the earlier 0.5 (label 0) ranks higher
    assert precision_at_top_k([1, 1, 0, 0], probs, 0.5) == 1.0


def test_precision_at_top_k_undefined_and_bad_fraction():
    assert precision_at_top_k([0, 0, 0], [0.3, 0.2, 0.1], 0.5) == 0.0  # no positives: defined, 0
    assert precision_at_top_k([], [], 0.5) is None
    assert precision_at_top_k([0, 1], [float("inf"), 0.1]) is None
    with pytest.raises(ValueError):
        precision_at_top_k([0, 1], [0.1, 0.2], 0.0)


# --- pairwise ---------------------------------------------------------------------------------

def test_pairwise_metrics_on_hand_made_pairs():
    rows = [  # (pair id, label, prob), threshold 0.5
        ("p1", 1, 0.9), ("p1", 0, 0.1),    # right
        ("p2", 0, 0.7), ("p2", 1, 0.8),    # both vulnerable (safe twin listed first)
        ("p3", 1, 0.2), ("p3", 0, 0.3),    # both safe
        ("p4", 1, 0.4), ("p4", 0, 0.6),    # reversed
        ("p5", 1, 0.5), ("p5", 0, 0.49),   # right: prob == threshold is flagged
        ("m1", 1, 0.9), ("m1", 1, 0.1),    # malformed: two vulnerable samples
        ("m2", 1, 0.9),                    # malformed: no twin
        ("m3", 1, 0.9), ("m3", 0, 0.1), ("m3", 0, 0.2),  # malformed: three samples
        (None, 1, 0.9),                    # unpaired sample
    ]
    ids, labels, probs = zip(*rows)
    m = pairwise_metrics(labels, probs, ids, threshold=0.5)
    assert m == {
        "pair_accuracy": pytest.approx(2 / 5), "pair_vulnerable_only": pytest.approx(1 / 5),
        "pair_safe_only": pytest.approx(1 / 5), "pair_reversed": pytest.approx(1 / 5),
        "n_pairs": 5, "n_ignored": 3,
    }
    assert tuple(m) == PAIRWISE_NAMES
    # numpy ids work the same; a higher threshold turns p2 into a right pair and p5 into both-safe
    m2 = pairwise_metrics(np.array(labels), np.array(probs), np.array(ids, dtype=object), threshold=0.75)
    assert m2["pair_accuracy"] == pytest.approx(2 / 5) and m2["pair_safe_only"] == pytest.approx(3 / 5)
    assert m2["pair_vulnerable_only"] == 0.0 and m2["pair_reversed"] == 0.0


def test_pairwise_metrics_none_without_usable_pairs():
    assert pairwise_metrics([1, 1, 0], [0.9, 0.2, 0.3], ["a", "a", "b"], 0.5) is None
    assert pairwise_metrics([1, 0], [float("nan"), 0.3], ["a", "a"], 0.5) is None
    with pytest.raises(ValueError, match="pair_ids"):
        pairwise_metrics([1, 0], [0.9, 0.3], ["a"], 0.5)


# --- threshold policies -------------------------------------------------------------------------

MCC_LABELS = [0, 0, 1, 0, 1, 1]
MCC_PROBS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def test_choose_threshold_f1_is_tune_threshold():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    probs = np.clip(labels * 0.25 + rng.random(300) * 0.75, 0, 1)
    assert choose_threshold(labels, probs, "f1") == tune_threshold(labels, probs)
    # on the hand case F1 prefers 0.3 (P 3/4, R 1 -> 6/7) over 0.5 (P 1, R 2/3 -> 4/5)
    assert choose_threshold(MCC_LABELS, MCC_PROBS, "f1") == 0.3


def test_choose_threshold_mcc_on_a_hand_case():
    # MCC by threshold: 0.6 -> 3/sqrt(45); 0.5 -> 6/sqrt(72); 0.4 -> 1/3; 0.3 -> 6/sqrt(72);
    # 0.3 and 0.5 tie at the maximum and the higher one wins
    assert choose_threshold(MCC_LABELS, MCC_PROBS, "mcc") == 0.5
    assert matthews_corrcoef(MCC_LABELS, np.array(MCC_PROBS) >= 0.5) == pytest.approx(6 / np.sqrt(72))


def test_choose_threshold_mcc_matches_brute_force():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 250)
    probs = np.round(np.clip(labels * 0.3 + rng.random(250) * 0.7, 0, 1), 2)  # rounded: many ties
    t = choose_threshold(labels, probs, "mcc")
    brute = max(matthews_corrcoef(labels, probs >= c) for c in np.unique(probs))
    assert matthews_corrcoef(labels, probs >= t) == pytest.approx(brute)


def test_choose_threshold_fpr_on_a_hand_case():
    neg = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    pos = [0.45, 0.6, 0.3]
    labels, probs = [0] * 10 + [1] * 3, neg + pos
    # 20 % of 10 negatives allows 2 false positives: negatives >= 0.45 are 0.45 and 0.5; at 0.4 it is 3
    t = choose_threshold(labels, probs, "fpr", target_fpr=0.2)
    assert t == 0.45
    assert compute_metrics(labels, probs, t)["recall"] == pytest.approx(2 / 3)
    # no false positive allowed: the lowest score above every negative is the 0.6 positive
    assert choose_threshold(labels, probs, "fpr", target_fpr=0.0) == 0.6
    assert choose_threshold(labels, probs, "fpr", target_fpr=1.0) == 0.05


def test_false_positive_budget_survives_float_rounding():
    # 0.29 * 100 is 28.999999999999996 in floating point; the budget is still 29 negatives
    neg = np.linspace(0.0, 0.99, 100)
    labels = np.r_[np.zeros(100, int), 1]
    probs = np.r_[neg, neg[71]]  # the positive ties with the 29th-highest negative
    t = choose_threshold(labels, probs, "fpr", target_fpr=0.29)
    assert t == neg[71] and int(np.sum(neg >= t)) == 29
    assert vd_s(labels, probs, max_fpr=0.29) == 0.0
    assert vd_s(labels, probs, max_fpr=0.28) == 1.0


def test_choose_threshold_rejects_bad_policy_and_target():
    with pytest.raises(ConfigError, match="allowed: f1, mcc, fpr"):
        choose_threshold([0, 1], [0.1, 0.9], "youden")
    with pytest.raises(ConfigError, match="target_fpr"):
        choose_threshold([0, 1], [0.1, 0.9], "fpr")
    with pytest.raises(ConfigError, match="target_fpr"):
        choose_threshold([0, 1], [0.1, 0.9], "fpr", target_fpr=2.0)
    assert THRESHOLD_POLICIES == ("f1", "mcc", "fpr")


def test_choose_threshold_edge_cases_are_finite_and_documented():
    for policy in ("f1", "mcc"):
        assert choose_threshold([1, 1, 1], [0.2, 0.4, 0.9], policy) == 0.5
        assert choose_threshold([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3], policy) == 0.3  # constant: flag all
        assert choose_threshold([0, 1], [float("nan"), 0.3], policy) == 0.5
        assert choose_threshold([], [], policy) == 0.5
    # "fpr" needs only negatives: 25 % of 4 allows one, the top one
    assert choose_threshold([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "fpr", target_fpr=0.25) == 0.4
    assert choose_threshold([1, 1], [0.1, 0.2], "fpr", target_fpr=0.1) == 0.5
    # constant scores over budget: a finite threshold just above them, so nothing is flagged
    t = choose_threshold([0, 1, 0, 1], [0.3] * 4, "fpr", target_fpr=0.1)
    assert np.isfinite(t) and t > 0.3 and flagged_fraction([0.3] * 4, t) == 0.0
    assert choose_threshold([0, 1, 0, 1], [1.0] * 4, "fpr", target_fpr=0.1) > 1.0
    assert choose_threshold([0, 1, 0, 1], [0.3] * 4, "fpr", target_fpr=1.0) == 0.3


def test_flagged_fraction():
    assert flagged_fraction([0.1, 0.5, 0.9, 0.5], 0.5) == 0.75
    assert flagged_fraction(torch.tensor([0.1, 0.2]), 0.5) == 0.0
    assert flagged_fraction([], 0.5) == 0.0
    with pytest.raises(ValueError):
        flagged_fraction([0.1, float("nan")], 0.5)
