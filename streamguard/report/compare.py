"""The neural models against the TF-IDF + LR baseline, from the test predictions on disk.

Reads `{run_dir}/test_predictions.npy` (float32 `[n_test]`, P(vulnerable) in the order of the test
split) and the run's `metrics.json` (its `threshold`, chosen on validation) for every planned
(model, seed) run and for the baseline run, plus the labels (and pair ids) of the test split. Computes:

- per run: realistic test metrics (`realistic_metrics`): ROC-AUC, VD-S (FNR at FPR <= 0.5 %),
  precision in the top 1 % and 5 %, the fraction flagged at the run's threshold, and PrimeVul's
  pairwise scores when the split has pairs;
- per model: the means of those over its runs with predictions, and against the baseline the paired
  bootstrap interval of the ROC-AUC difference of the seed-averaged model (`paired_bootstrap_auc_diff`
  with the seeds as rows: one set of resamples for all seeds and the baseline), McNemar's test per
  seed (each side at its own threshold), and a verdict sentence.

A run without usable predictions (an old run, a collapsed or missing run, a file of the wrong length)
is marked unavailable with its reason, never fatal; so is the baseline, and then no model has a
`vs_baseline` block. Everything is a function of the files (the bootstrap seed is fixed), so the
output is the same bytes on every rerun.

Pairs: a `pair` field in the records wins; otherwise, for synthetic data (records with `cwe`), a
vulnerable function and its safe twin share `group`; otherwise there are no pairwise metrics.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from ..data.splits import read_split
from ..errors import ConfigError, DataError, one_line
from ..train.metrics import flagged_fraction, pairwise_metrics, precision_at_top_k, vd_s
from .runfiles import RunRecord, load_run, read_run_dir
from .stats import compare_sentence, mcnemar, outcome, paired_bootstrap_auc_diff

PREDICTIONS_FILE = "test_predictions.npy"
DEFAULT_N_BOOT = 2000
DEFAULT_BOOT_SEED = 0
ALPHA = 0.05
VD_S_MAX_FPR = 0.005
RESAMPLING = "paired, stratified by class"
PAIR_FRACTIONS = ("pair_accuracy", "pair_vulnerable_only", "pair_safe_only", "pair_reversed")
REALISTIC = ("roc_auc", "vd_s", "precision_at_1pct", "precision_at_5pct", "flagged_fraction") + PAIR_FRACTIONS
# How the report names a baseline run directory; others are shown by their directory name.
BASELINE_LABELS = {"tfidf_lr": "TF-IDF + LR"}


@dataclasses.dataclass(frozen=True)
class SplitLabels:
    """Labels and pair ids of the test split, in file order (the order of every test_predictions.npy).

    `pair_source` is the record field the ids come from ("pair" or "group"); both are None without pairs.
    """

    labels: np.ndarray
    pair_ids: list[Hashable] | None
    pair_source: str | None

    def __len__(self) -> int:
        return int(self.labels.size)


def _pair_key(value: Any, path: pathlib.Path, line: int, field: str) -> Hashable:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"expected a string or integer pair id, got {value!r}", path, line, field)
    return value


def read_test_split(path: str | os.PathLike) -> SplitLabels:
    """Read `splits/test.jsonl`: one JSON object per line with `label` 0/1; blank lines are skipped."""
    path = pathlib.Path(path)
    records = read_split(path)
    if not records:
        raise DataError("the test split holds no records", path)
    labels = np.asarray([r["label"] for _, r in records], dtype=np.int64)
    if any("pair" in r for _, r in records):
        field = "pair"
    elif all("cwe" in r for _, r in records):
        field = "group"  # synthetic data: a vulnerable function and its safe twin share the group
    else:
        return SplitLabels(labels, None, None)
    ids = [_pair_key(r.get(field), path, n, field) for n, r in records]
    return SplitLabels(labels, ids, field)


def _pair_counts(split: SplitLabels) -> dict[str, Any] | None:
    """The usable pairs of the split (they depend on labels and ids only, not on any model)."""
    if split.pair_ids is None:
        return None
    counts = pairwise_metrics(split.labels, np.zeros(len(split)), split.pair_ids, 0.5)
    if counts is None:
        return None
    return {"source": split.pair_source, "n_pairs": counts["n_pairs"], "n_ignored": counts["n_ignored"]}


def load_predictions(run_dir: str | os.PathLike, n: int) -> tuple[np.ndarray | None, str | None]:
    """(P(vulnerable) as float64 `[n]`, None), or (None, why they cannot be used)."""
    path = pathlib.Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None, f"no {PREDICTIONS_FILE} (a run written before predictions were saved?)"
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        return None, f"{PREDICTIONS_FILE} is unreadable: {one_line(exc)[:200]}"
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        return None, f"{PREDICTIONS_FILE} does not hold numbers"
    if arr.ndim != 1 or arr.size != n:
        # another split's predictions, e.g. a run that predates a re-prepared dataset
        return None, f"{PREDICTIONS_FILE} has shape {list(arr.shape)}, the test split has {n} samples"
    probs = arr.astype(np.float64)
    if not np.all(np.isfinite(probs)):
        return None, f"{PREDICTIONS_FILE} holds NaN or inf"
    if probs.min() < 0.0 or probs.max() > 1.0:
        return None, f"{PREDICTIONS_FILE} holds values outside [0, 1], not probabilities"
    return probs, None


def _threshold(metrics: Mapping[str, Any] | None) -> float | None:
    value = (metrics or {}).get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def realistic_metrics(labels, probs, threshold: float, pair_ids: Sequence[Hashable] | None) -> dict[str, Any]:
    """The realistic test metrics of one run: ranking at low false-alarm rates, and the alarm volume."""
    y = np.asarray(labels, dtype=np.int64)
    out: dict[str, Any] = {
        "roc_auc": None,
        "vd_s": vd_s(y, probs, max_fpr=VD_S_MAX_FPR),
        "precision_at_1pct": precision_at_top_k(y, probs, 0.01),
        "precision_at_5pct": precision_at_top_k(y, probs, 0.05),
        "flagged_fraction": flagged_fraction(probs, threshold),
    }
    if np.unique(y).size == 2:
        out["roc_auc"] = float(roc_auc_score(y, probs))
    pairs = pairwise_metrics(y, probs, pair_ids, threshold) if pair_ids is not None else None
    out.update({name: (pairs[name] if pairs else None) for name in PAIR_FRACTIONS})
    return out


@dataclasses.dataclass(frozen=True)
class Scored:
    """One run's usable test predictions and threshold, or the reason there are none."""

    seed: int | None
    probs: np.ndarray | None
    threshold: float | None
    reason: str | None

    @property
    def available(self) -> bool:
        return self.probs is not None


def score_run(rec: RunRecord, n: int) -> Scored:
    if rec.status == "missing":
        return Scored(rec.seed, None, None, f"run missing: {rec.reason}")
    if rec.status != "ok":
        return Scored(rec.seed, None, None, rec.reason or "run collapsed")
    threshold = _threshold(rec.metrics)
    if threshold is None:
        return Scored(rec.seed, None, None, "metrics.json has no finite 'threshold'")
    probs, reason = load_predictions(rec.run_dir, n)
    return Scored(rec.seed, probs, threshold if probs is not None else None, reason)


def _run_entry(scored: Scored, split: SplitLabels) -> dict[str, Any]:
    realistic = (realistic_metrics(split.labels, scored.probs, scored.threshold, split.pair_ids)
                 if scored.available else None)
    return {"seed": scored.seed, "available": scored.available, "reason": scored.reason,
            "threshold": scored.threshold, "realistic": realistic}


def _means(entries: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in REALISTIC:
        values = [e["realistic"][name] for e in entries if e["available"] and e["realistic"][name] is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


def baseline_label(model: str) -> str:
    return BASELINE_LABELS.get(model, model)


def _vs_baseline(model: str, runs: Sequence[Scored], base: Scored, base_name: str, split: SplitLabels,
                 n_boot: int, boot_seed: int) -> dict[str, Any]:
    rows = np.stack([r.probs for r in runs])
    boot = paired_bootstrap_auc_diff(split.labels, rows, base.probs, n_boot=n_boot, seed=boot_seed, alpha=ALPHA)
    base_pred = (base.probs >= base.threshold).astype(np.int64)
    tests = []
    for r in runs:
        m = mcnemar(split.labels, (r.probs >= r.threshold).astype(np.int64), base_pred)
        tests.append({"seed": r.seed, "b": m["b"], "c": m["c"], "p_value": m["p_value"], "method": m["method"]})
    seeds = [r.seed for r in runs]
    name = f"{model} (mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else f"{model} (seed {seeds[0]})"
    return {
        "seeds": seeds,
        "diff": boot["diff"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "p_value": boot["p_value"],
        "n_boot": boot["n_boot"], "alpha": boot["alpha"],
        "outcome": outcome(boot),
        "mcnemar": tests,
        "verdict": compare_sentence(name, baseline_label(base_name), boot, tests),
    }


def compare_runs(outputs_dir: str | os.PathLike, models: Sequence[str], seeds: Sequence[int], *,
                 test_split: str | os.PathLike, baseline_dir: str | os.PathLike | None = None,
                 n_boot: int = DEFAULT_N_BOOT, boot_seed: int = DEFAULT_BOOT_SEED,
                 records: Mapping[tuple[str, int], RunRecord] | None = None) -> dict[str, Any]:
    """Realistic metrics per run and model, and each model against the baseline.

    Returns `{"settings": {...}, "baseline": {...} or None (no baseline_dir), "comparisons": {model: ...}}`
    (the shapes are in summary_schema.json). `records` (keyed by (model, seed)) reuses runs already read;
    missing keys are read from `outputs_dir`. A bad test split is a DataError; a bad run never raises.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot: expected a positive integer, got {n_boot!r}")
    split = read_test_split(test_split)
    n = len(split)
    pairs = _pair_counts(split)
    if pairs is None:  # ids without a single usable pair: no pairwise metrics anywhere
        split = SplitLabels(split.labels, None, None)
    settings = {
        "n_boot": int(n_boot), "bootstrap_seed": int(boot_seed), "alpha": ALPHA, "resampling": RESAMPLING,
        "vd_s_max_fpr": VD_S_MAX_FPR, "n_test": n, "n_test_positive": int(split.labels.sum()), "pairs": pairs,
    }

    base: Scored | None = None
    baseline: dict[str, Any] | None = None
    if baseline_dir is not None:
        base_path = pathlib.Path(baseline_dir)
        rec = read_run_dir(base_path, base_path.name, None)
        base = score_run(rec, n)
        named = (rec.metrics or {}).get("model")
        name = named if isinstance(named, str) and named.strip() else base_path.name
        entry = _run_entry(base, split)
        baseline = {"model": name, "available": entry["available"], "reason": entry["reason"],
                    "threshold": entry["threshold"], "test": rec.test if rec.status == "ok" else None,
                    "realistic": entry["realistic"]}

    comparisons: dict[str, Any] = {}
    for model in models:
        scored = []
        for seed in seeds:
            rec = (records or {}).get((model, seed)) or load_run(outputs_dir, model, seed)
            scored.append(score_run(rec, n))
        entries = [_run_entry(s, split) for s in scored]
        usable = [s for s in scored if s.available]
        vs = None
        if base is not None and base.available and usable:
            vs = _vs_baseline(model, usable, base, baseline["model"], split, n_boot, boot_seed)
        comparisons[model] = {"runs": entries, "n_available": len(usable), "realistic": _means(entries),
                              "vs_baseline": vs}
    return {"settings": settings, "baseline": baseline, "comparisons": comparisons}
