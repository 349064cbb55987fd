"""Binary classification metrics that never crash and never produce NaN.

Public API
----------
- ``METRIC_NAMES``: ``accuracy, precision, recall, f1, roc_auc, pr_auc, mcc`` (the order used in
  metrics.json and metrics_history.csv).
- ``compute_metrics(labels, probs, threshold=0.5) -> dict[str, float | None]``.
- ``tune_threshold(labels, probs) -> float``: the threshold maximizing F1 (0.5 when undefined).
- ``reduce_predictions(chunks) -> (labels, probs)``: the one place per-batch predictions are
  gathered into arrays (a distributed run all-gathers here).
- ``vd_s(labels, probs, max_fpr=0.005) -> float | None``: PrimeVul's VD-S (false-negative rate at the
  highest-recall threshold whose false-positive rate is <= ``max_fpr``).
- ``precision_at_top_k(labels, probs, fraction=0.01) -> float | None``.
- ``pairwise_metrics(labels, probs, pair_ids, threshold) -> dict | None``: PrimeVul's pairwise scores
  over vulnerable/patched twins.
- ``choose_threshold(labels, probs, policy, target_fpr=None, default=0.5) -> float``: one of
  ``THRESHOLD_POLICIES`` (``"f1"``, ``"mcc"``, ``"fpr"``).
- ``flagged_fraction(probs, threshold) -> float``.

Everywhere a sample is predicted vulnerable when ``prob >= threshold``. Chosen thresholds (and VD-S's)
sit at observed scores or just above the highest one, so samples with tied scores are flagged all
together or not at all. Only ``precision_at_top_k`` cuts through a tie, by input order.

Undefined values: ROC-AUC and PR-AUC are None when the labels hold a single class (or no samples);
every metric is None when a probability is NaN/inf. Precision, recall and F1 follow scikit-learn's
``zero_division=0`` convention (0.0 when nothing is predicted / present as positive) and MCC is
scikit-learn's 0.0 for a constant prediction, so the threshold metrics stay comparable across seeds.
"""
from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence

import numpy as np
import torch
from sklearn import metrics as skm

from ..errors import ConfigError

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")
THRESHOLD_POLICIES: tuple[str, ...] = ("f1", "mcc", "fpr")
PAIRWISE_NAMES: tuple[str, ...] = (
    "pair_accuracy", "pair_vulnerable_only", "pair_safe_only", "pair_reversed", "n_pairs", "n_ignored",
)


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


def _checked(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    y = _as_array(labels, np.int64)
    p = _as_array(probs, np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length: {y.shape[0]} vs {p.shape[0]}")
    return y, p


def _usable(y: np.ndarray, p: np.ndarray) -> bool:
    return y.size > 0 and bool(np.all(np.isfinite(p)))


def _allowed_false_positives(rate: float, n_neg: int) -> int:
    # Integer counts rather than float rates, so 5 of 1000 negatives is exactly 0.5 %;
    # the epsilon absorbs rounding in rate * n_neg (0.005 * 1000 must give 5, not 4).
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"false-positive rate must be in [0, 1], got {rate}")
    return int(math.floor(rate * n_neg + 1e-9))


def _counts_at(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of ``sorted_scores`` are >= each threshold."""
    return sorted_scores.size - np.searchsorted(sorted_scores, thresholds, side="left")


def _lowest_threshold_within_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float) -> float:
    """The lowest observed score t with FPR(p >= t) <= max_fpr; just above the top score when none.

    Needs at least one negative. FPR only falls as the threshold rises, so the admissible scores form
    a suffix of the sorted unique scores and the lowest of them has the highest recall.
    """
    neg = np.sort(p[y == 0])
    allowed = _allowed_false_positives(max_fpr, neg.size)
    candidates = np.unique(p)
    ok = np.flatnonzero(_counts_at(neg, candidates) <= allowed)
    if ok.size == 0:  # the top score alone (with its ties) already has too many negatives
        return float(np.nextafter(candidates[-1], np.inf))
    return float(candidates[ok[0]])


def vd_s(labels, probs, max_fpr: float = 0.005) -> float | None:
    """PrimeVul's VD-S: the false-negative rate at the highest-recall threshold with FPR <= ``max_fpr``.

    Candidate thresholds are the observed scores (predictions ``prob >= t``) plus one above the top
    score (flag nothing, FNR 1.0). A group of tied scores is flagged as a whole: when flagging the
    whole group would exceed ``max_fpr``, none of it is flagged (the threshold moves above the group).
    The false-positive budget is ``floor(max_fpr * n_negatives)``, counted exactly: with 1000 negatives
    and 0.5 %, at most 5 negatives may be flagged.

    None when a class is absent, there are no samples, or a probability is NaN/inf.
    """
    y, p = _checked(labels, probs)
    if not _usable(y, p) or np.unique(y).size < 2:
        return None
    t = _lowest_threshold_within_fpr(y, p, max_fpr)
    recall = float(np.mean(p[y == 1] >= t))
    return 1.0 - recall


def precision_at_top_k(labels, probs, fraction: float = 0.01) -> float | None:
    """Precision among the ``k = ceil(fraction * n)`` highest-scored samples (at least one).

    Ties are broken stably by input order: of samples with equal scores, the earlier ones rank higher,
    so the result is deterministic but depends on order when a tie straddles the cut. A set without
    positives gives 0.0 (well defined); None when there are no samples or a probability is NaN/inf.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    y, p = _checked(labels, probs)
    if not _usable(y, p):
        return None
    # The epsilon stops float noise (0.07 * 100 = 7.000000000000001) from adding a sample.
    k = max(1, int(math.ceil(fraction * y.size - 1e-9)))
    order = np.argsort(-p, kind="stable")
    return float(np.mean(y[order[:k]]))


def pairwise_metrics(labels, probs, pair_ids: Sequence[Hashable], threshold: float) -> dict | None:
    """PrimeVul's pairwise evaluation over vulnerable/patched twins sharing a pair id.

    A usable pair is a pair id held by exactly two samples, one vulnerable (label 1) and one safe
    (label 0); every other id (a single sample, three samples, two of the same label) is ignored, as is
    a sample whose id is None. Predictions are ``prob >= threshold``. Returns fractions of usable
    pairs (they sum to 1):

    - ``pair_accuracy``: both right (vulnerable flagged, safe not);
    - ``pair_vulnerable_only``: both predicted vulnerable;
    - ``pair_safe_only``: both predicted safe;
    - ``pair_reversed``: both wrong (vulnerable predicted safe, safe predicted vulnerable);

    plus ``n_pairs`` (usable pairs) and ``n_ignored`` (pair ids ignored). None when no pair is usable
    or a probability is NaN/inf.
    """
    y, p = _checked(labels, probs)
    ids = list(pair_ids.tolist() if isinstance(pair_ids, np.ndarray) else pair_ids)
    if len(ids) != y.size:
        raise ValueError(f"pair_ids and labels differ in length: {len(ids)} vs {y.size}")
    if not _usable(y, p):
        return None
    members: dict[Hashable, list[int]] = {}
    for i, pid in enumerate(ids):
        if pid is not None:
            members.setdefault(pid, []).append(i)
    pred = p >= threshold
    vul_flag, safe_flag = [], []
    for rows in members.values():
        if len(rows) != 2 or sorted(int(y[i]) for i in rows) != [0, 1]:
            continue
        vul, safe = (rows[0], rows[1]) if y[rows[0]] == 1 else (rows[1], rows[0])
        vul_flag.append(pred[vul])
        safe_flag.append(pred[safe])
    n = len(vul_flag)
    if n == 0:
        return None
    v, s = np.asarray(vul_flag, dtype=bool), np.asarray(safe_flag, dtype=bool)
    return {
        "pair_accuracy": float(np.mean(v & ~s)),
        "pair_vulnerable_only": float(np.mean(v & s)),
        "pair_safe_only": float(np.mean(~v & ~s)),
        "pair_reversed": float(np.mean(~v & s)),
        "n_pairs": n,
        "n_ignored": len(members) - n,
    }


def _mcc_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The observed score maximizing MCC of ``p >= t`` (ties: the highest such threshold)."""
    candidates = np.unique(p)
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = _counts_at(pos, candidates).astype(np.float64)
    fp = _counts_at(neg, candidates).astype(np.float64)
    fn, tn = pos.size - tp, neg.size - fp
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    # scikit-learn's convention: MCC is 0 when any margin is empty (e.g. everything flagged).
    mcc = np.divide(tp * tn - fp * fn, denom, out=np.zeros_like(denom), where=denom > 0)
    best = np.flatnonzero(mcc == mcc.max())[-1]
    return float(candidates[best])


def choose_threshold(labels, probs, policy: str, target_fpr: float | None = None,
                     default: float = 0.5) -> float:
    """A decision threshold chosen on (validation) labels and probabilities.

    Policies (``THRESHOLD_POLICIES``):

    - ``"f1"``: maximize F1 (``tune_threshold``; ties: the highest threshold);
    - ``"mcc"``: maximize the Matthews correlation over the observed scores (ties: the highest);
    - ``"fpr"``: the lowest observed score whose false-positive rate is <= ``target_fpr``, i.e. the most
      recall within the false-alarm budget ``floor(target_fpr * n_negatives)``; when even the top score
      (with its ties) exceeds the budget, a threshold just above the top score (nothing flagged).

    Edge cases always give a finite threshold: with no samples or a NaN/inf probability, ``default``;
    ``"f1"`` and ``"mcc"`` also return ``default`` when a class is absent, and ``"fpr"`` when there are
    no negatives (it needs no positives). With constant probabilities and both classes, ``"f1"`` and
    ``"mcc"`` return that constant (flag everything; the only observed score) and ``"fpr"`` returns it
    when flagging every negative is within budget, else just above it.

    Unknown policy, or ``"fpr"`` without a ``target_fpr`` in [0, 1] -> ``ConfigError``.
    """
    if policy not in THRESHOLD_POLICIES:
        raise ConfigError(f"unknown threshold policy {policy!r}; allowed: {', '.join(THRESHOLD_POLICIES)}")
    if policy == "fpr" and (target_fpr is None or not 0.0 <= target_fpr <= 1.0):
        raise ConfigError(f"threshold policy 'fpr' needs target_fpr in [0, 1], got {target_fpr!r}")
    y, p = _checked(labels, probs)
    if not _usable(y, p):
        return float(default)
    if policy == "f1":
        return tune_threshold(y, p, default=default)
    if policy == "fpr":
        if not np.any(y == 0):
            return float(default)
        return _lowest_threshold_within_fpr(y, p, float(target_fpr))
    if np.unique(y).size < 2:
        return float(default)
    return _mcc_threshold(y, p)


def flagged_fraction(probs, threshold: float) -> float:
    """Fraction of samples predicted vulnerable (``prob >= threshold``); 0.0 for no samples.

    A NaN/inf probability raises ValueError: the fraction would silently count it as not flagged.
    """
    p = _as_array(probs, np.float64)
    if p.size == 0:
        return 0.0
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or inf")
    return float(np.mean(p >= threshold))
