"""Metrics: values against hand-computed cases, robustness, threshold tuning."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from streamguard.io import dumps_strict
from streamguard.train.metrics import METRIC_NAMES, compute_metrics, reduce_predictions, tune_threshold


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
