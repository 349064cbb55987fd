"""Binary classification metrics that never crash and never produce NaN.

Public API
----------
- ``METRIC_NAMES``: ``accuracy, precision, recall, f1, roc_auc, pr_auc, mcc`` (the order used in
  metrics.json and metrics_history.csv).
- ``compute_metrics(labels, probs, threshold=0.5) -> dict[str, float | None]``.
- ``tune_threshold(labels, probs) -> float``: the threshold maximizing F1 (0.5 when undefined).
- ``reduce_predictions(chunks) -> (labels, probs)``: the one place per-batch predictions are
  gathered into arrays (a distributed run all-gathers here).

Undefined values: ROC-AUC and PR-AUC are None when the labels hold a single class (or no samples);
every metric is None when a probability is NaN/inf. Precision, recall and F1 follow scikit-learn's
``zero_division=0`` convention (0.0 when nothing is predicted / present as positive) and MCC is
scikit-learn's 0.0 for a constant prediction, so the threshold metrics stay comparable across seeds.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from sklearn import metrics as skm

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")


def _as_array(values: Sequence[float] | np.ndarray | torch.Tensor, dtype: type) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype).reshape(-1)


def empty_metrics() -> dict[str, float | None]:
    return {name: None for name in METRIC_NAMES}


def compute_metrics(labels, probs, threshold: float = 0.5) -> dict[str, float | None]:
    """Metrics for binary labels (0/1) and positive-class probabilities; predictions are probs >= threshold."""
    y = _as_array(labels, np.int64)
    p = _as_array(probs, np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.size == 0 or not np.all(np.isfinite(p)):
        return empty_metrics()
    pred = (p >= threshold).astype(np.int64)
    out: dict[str, float | None] = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "roc_auc": None,
        "pr_auc": None,
        "mcc": float(skm.matthews_corrcoef(y, pred)),
    }
    if np.unique(y).size == 2:  # ranking metrics are undefined for a single class
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
    return {k: (v if v is None or np.isfinite(v) else None) for k, v in out.items()}


def tune_threshold(labels, probs, default: float = 0.5) -> float:
    """Threshold on probabilities that maximizes F1 (ties: the highest such threshold).

    Returns ``default`` when F1 cannot be tuned (single class, no samples, non-finite probs).
    """
    y = _as_array(labels, np.int64)
    p = _as_array(probs, np.float64)
    if y.size == 0 or np.unique(y).size < 2 or not np.all(np.isfinite(p)):
        return float(default)
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(thresholds[best])


def reduce_predictions(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-batch (labels, probs) tensors into numpy arrays (float64 probs, int64 labels)."""
    labels, probs = [], []
    for y, p in chunks:
        labels.append(y.detach().reshape(-1).cpu())
        probs.append(p.detach().reshape(-1).float().cpu())
    if not labels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return (
        torch.cat(labels).to(torch.int64).detach().numpy(),
        torch.cat(probs).to(torch.float64).detach().numpy(),
    )
