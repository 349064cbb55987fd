"""Significance tests for comparing two models on the same test set. Pure functions, no file I/O.

Public API
----------
- ``paired_bootstrap_auc_diff(labels, probs_a, probs_b, n_boot=2000, seed=0, alpha=0.05) -> dict``:
  ROC-AUC difference (a - b) with a paired, class-stratified percentile bootstrap; ``probs_a`` may
  be ``[n_seeds, n]`` (the mean over a model's seeds).
- ``mcnemar(labels, pred_a, pred_b) -> dict``: McNemar's test on the two models' hard predictions.
- ``outcome(boot) -> str | None``: "better", "worse" or "not distinguishable" from the interval.
- ``format_p(p, resolution=None) -> str``: a p-value as the report prints it.
- ``compare_sentence(name_a, name_b, boot, mcn) -> str``: a one-sentence verdict for the report
  (``mcn``: one McNemar result or one per seed).

Undefined values are None, never NaN, so the results can be written as strict JSON.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

# Below this many discordant pairs McNemar's chi-square approximation is poor; use the exact test.
EXACT_MCNEMAR_BELOW = 25
# Bound on resamples x samples held in memory at once (int64 counts: about 32 MB).
_CHUNK_CELLS = 4_000_000


def _vector(values, dtype) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(-1)


def _resample_counts(rng: np.random.Generator, n_rows: int, size: int) -> np.ndarray:
    """How often each of ``size`` samples is drawn, per row, when drawing ``size`` with replacement."""
    draws = rng.integers(0, size, (n_rows, size))
    flat = draws + (np.arange(n_rows)[:, None] * size)
    return np.bincount(flat.reshape(-1), minlength=n_rows * size).reshape(n_rows, size)


def _weighted_aucs(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """ROC-AUC of each resample, given as per-sample draw counts (rows of ``w_pos``, ``w_neg``).

    The Mann-Whitney form of ROC-AUC: the share of (positive, negative) pairs ranked correctly, a tie
    counting one half, which is what roc_auc_score computes. One call per resample would cost ~2 ms at
    n=3000; this does all rows at once with a cumulative sum over the sorted negatives.
    """
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    lo = np.searchsorted(neg_sorted, pos, side="left")   # negatives strictly below each positive
    hi = np.searchsorted(neg_sorted, pos, side="right")  # ... plus those tied with it
    cum = np.zeros((w_neg.shape[0], neg.size + 1), dtype=np.int64)
    np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
    # Twice the weighted count of correctly ranked pairs: 2 * below + tied = below + (below + tied).
    twice = cum[:, lo] + cum[:, hi]
    pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    return (w_pos * twice).sum(axis=1) / (2.0 * pairs)


def _score_rows(values) -> np.ndarray:
    """Scores as [n_models, n]: a 1-D input is one row, a 2-D input is taken as it is."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim > 2:
        raise ValueError(f"probs_a must be [n] or [n_seeds, n], got shape {arr.shape}")
    return arr if arr.ndim == 2 else arr.reshape(1, -1)


def paired_bootstrap_auc_diff(labels, probs_a, probs_b, n_boot: int = 2000, seed: int = 0,
                              alpha: float = 0.05) -> dict:
    """ROC-AUC of model a minus model b, with a paired bootstrap over the test samples.

    ``probs_a`` is ``[n]`` (one run) or ``[n_seeds, n]`` (several seeds of one model); with several
    rows model a's AUC is the mean of the rows' AUCs, on the full data and within every resample, so
    the interval covers the seed-averaged model rather than one lucky seed. ``probs_b`` is ``[n]``.

    Each resample draws the positives and the negatives separately, with replacement and in their
    original numbers (stratified), so every resample holds both classes, and all rows of a and b are
    scored on the same resample (paired). Returns:

    - ``diff``: AUC_a - AUC_b on the full data (roc_auc_score);
    - ``ci_low``, ``ci_high``: the ``alpha/2`` and ``1 - alpha/2`` percentiles of the resampled diffs;
    - ``p_value``: two-sided: twice the fraction of resamples whose diff lies on the other side of 0
      from ``diff`` (a resampled diff of exactly 0 counts as on the other side), capped at 1; 1.0 when
      ``diff`` is 0. Its resolution is ``2 / n_valid``, and 0.0 means "below that";
    - ``n_boot``, ``n_valid`` (resamples holding both classes: all of them, by the stratification),
      ``alpha``; with a 2-D ``probs_a`` also ``n_seeds`` (its rows).

    When a class is absent or a probability is NaN/inf, ``diff``, the interval and ``p_value`` are
    None and ``n_valid`` is 0. Deterministic for a given ``seed``; a one-row ``probs_a`` gives the
    same numbers as the 1-D call.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    y = _vector(labels, np.int64)
    rows_a = _score_rows(probs_a)
    b = _vector(probs_b, np.float64)
    if rows_a.shape[0] < 1:
        raise ValueError(f"probs_a must hold at least one row, got shape {rows_a.shape}")
    if not (y.shape[0] == rows_a.shape[1] == b.shape[0]):
        raise ValueError(f"labels and probabilities differ in length: {y.size}, {rows_a.shape[1]}, {b.size}")
    out = {"diff": None, "ci_low": None, "ci_high": None, "p_value": None,
           "n_boot": int(n_boot), "n_valid": 0, "alpha": float(alpha)}
    if np.ndim(probs_a) == 2:
        out["n_seeds"] = int(rows_a.shape[0])
    is_pos = y == 1
    if not (is_pos.any() and (~is_pos).any()) or not (np.isfinite(rows_a).all() and np.isfinite(b).all()):
        return out
    # Averaging per-row differences, not AUCs, keeps a row identical to b at exactly 0 (no rounding).
    auc_b = roc_auc_score(y, b)
    diff = float(np.mean([roc_auc_score(y, row) - auc_b for row in rows_a]))

    pos_b, neg_b = b[is_pos], b[~is_pos]
    pos_a, neg_a = rows_a[:, is_pos], rows_a[:, ~is_pos]
    rng = np.random.default_rng(seed)
    # The chunking (and so the draw order) does not depend on the rows of a: every row, and any
    # one-row call with the same seed, sees the same resamples.
    chunk = max(1, _CHUNK_CELLS // y.size)
    diffs = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        w_pos = _resample_counts(rng, rows, pos_b.size)
        w_neg = _resample_counts(rng, rows, neg_b.size)
        boot_b = _weighted_aucs(pos_b, neg_b, w_pos, w_neg)
        per_row = [_weighted_aucs(pos_a[k], neg_a[k], w_pos, w_neg) - boot_b for k in range(rows_a.shape[0])]
        diffs[start:start + rows] = per_row[0] if len(per_row) == 1 else np.mean(per_row, axis=0)

    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    if diff == 0:
        p_value = 1.0
    else:
        flipped = np.count_nonzero(diffs <= 0) if diff > 0 else np.count_nonzero(diffs >= 0)
        p_value = min(1.0, 2.0 * flipped / n_boot)
    out.update(diff=diff, ci_low=float(low), ci_high=float(high), p_value=float(p_value),
               n_valid=int(n_boot))
    return out


def _binary(values, name: str) -> np.ndarray:
    arr = np.asarray(values).reshape(-1)
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 predictions, not probabilities or other values")
    return arr.astype(bool)


def mcnemar(labels, pred_a, pred_b) -> dict:
    """McNemar's test of whether models a and b make errors at the same rate on the same samples.

    ``b``: samples a gets right and b gets wrong; ``c``: the reverse. With ``b + c`` below 25 the exact
    two-sided binomial test of ``b`` out of ``b + c`` at 1/2 (``method`` "exact", ``statistic`` =
    ``min(b, c)``); otherwise the chi-square test with continuity correction, ``statistic`` =
    ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom (``method`` "chi2"). With no discordant
    samples the models are indistinguishable: p = 1.
    """
    y, pa, pb = _binary(labels, "labels"), _binary(pred_a, "pred_a"), _binary(pred_b, "pred_b")
    if not (y.shape == pa.shape == pb.shape):
        raise ValueError(f"labels and predictions differ in length: {y.size}, {pa.size}, {pb.size}")
    ra, rb = pa == y, pb == y
    b = int(np.count_nonzero(ra & ~rb))
    c = int(np.count_nonzero(~ra & rb))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if n < EXACT_MCNEMAR_BELOW:
        p = sps.binomtest(b, n, 0.5, alternative="two-sided").pvalue
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": float(min(1.0, p)),
                "method": "exact"}
    statistic = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": float(sps.chi2.sf(statistic, df=1)),
            "method": "chi2"}


def format_p(p: float, resolution: float | None = None) -> str:
    if p == 0 and resolution is not None:
        return f"p<{resolution:.2g}"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def outcome(boot: dict) -> str | None:
    """The verdict of a bootstrap result: "better" when the interval lies entirely above 0, "worse"
    when entirely below, "not distinguishable" when it contains 0; None when the difference is undefined."""
    if boot.get("diff") is None:
        return None
    return "better" if boot["ci_low"] > 0 else "worse" if boot["ci_high"] < 0 else "not distinguishable"


def compare_sentence(name_a: str, name_b: str, boot: dict, mcn: dict | Sequence[dict] | None) -> str:
    """One sentence comparing model a with model b, e.g.

    "fusion vs TF-IDF + LR: ROC-AUC +0.031 (95 % CI +0.012 to +0.050, p=0.002): better; McNemar p=0.04
    at the chosen threshold."

    The verdict is ``outcome(boot)``. ``mcn`` is one McNemar result, or a list of them, one per seed of
    model a (each with its ``seed``), each at both sides' own chosen thresholds:
    "...: better; McNemar per seed at each side's chosen threshold: p=0.04 (seed 42), p<0.001 (seed 7)."
    ``mcn`` None or an empty list leaves McNemar out.
    """
    head = f"{name_a} vs {name_b}: "
    verdict = outcome(boot)
    if verdict is None:
        text = head + "ROC-AUC difference undefined (a class is missing or a score is not finite)"
    else:
        level = 100 * (1 - boot.get("alpha", 0.05))
        low, high = boot["ci_low"], boot["ci_high"]
        p = format_p(boot["p_value"], 2 / boot["n_valid"] if boot.get("n_valid") else None)
        text = (head + f"ROC-AUC {boot['diff']:+.3f} ({level:g} % CI {low:+.3f} to {high:+.3f}, {p}): "
                + verdict)
    if isinstance(mcn, dict):
        text += f"; McNemar {format_p(mcn['p_value'])} at the chosen threshold"
    elif mcn:
        per_seed = ", ".join(f"{format_p(m['p_value'])} (seed {m['seed']})" for m in mcn)
        text += f"; McNemar per seed at each side's chosen threshold: {per_seed}"
    return text + "."
