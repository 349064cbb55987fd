"""Aggregate the per-seed run directories into the production summary.

Reads only files on disk: `{outputs_dir}/{model}/seed_{S}/metrics.json` (`model` is a run-directory
name such as `gnn_v17`, as the model kinds name them), `metrics_history.csv`
and, when present, `collapse_report.json`; when asked for comparisons, also each run's
`test_predictions.npy`, the baseline's run directory and the test split (see `compare`).
A run is `ok`, `collapsed` (its metrics.json says so) or `missing` (no directory, no/corrupt
metrics.json, or a metrics.json that breaks the contract); only ok runs enter the means. std is
the sample std (ddof=1) over ok runs, 0.0 for a single ok run and null for none.
`best_overall_model` is the model with the highest mean test F1 (first in `models` order on a
tie); `best_seed` is the ok seed with the highest test F1 (first in `seeds` order on a tie).

The output directory is a DVC out: every file in it is a function of the run files alone (no dates,
no wall times), so aggregating the same runs twice writes identical bytes. Wall times are in each
run's run_log.json (see streamguard.train.outputs), which aggregate does not read.
"""
from __future__ import annotations

import csv
import io
import math
import os
import pathlib
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import write_json_atomic, write_text_atomic
from .compare import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, compare_runs
from .markdown import render_report
from .plots import plot_f1_by_seed, plot_metrics_comparison
from .runfiles import METRICS, RunRecord, load_run
from .validate import validate_summary

DEFAULT_SEEDS = (42, 2025, 7)

SUMMARY_JSON = "production_summary.json"
REPORT_MD = "production_report.md"
STABILITY_CSV = "training_stability.csv"
COMPARISON_PNG = "metrics_comparison.png"
F1_BY_SEED_PNG = "f1_by_seed.png"

STABILITY_COLUMNS = (
    "model", "seed", "status", "collapsed", "reason", "final_epoch", "best_epoch", "epochs_run",
    "grad_norm_min", "grad_norm_max", "grad_norm_max_over_min", "grad_norm_std", "grad_norm_nonfinite_epochs",
    "skipped_steps_total", "nonfinite_loss_epochs", "history",
)


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1) of the finite values; std 0.0 for one value, (None, None) for none."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return None, None
    std = float(arr.std(ddof=1)) if arr.size >= 2 else 0.0
    return float(arr.mean()), std


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else None


def _run_entry(rec: RunRecord) -> dict[str, Any]:
    m = rec.metrics or {}
    return {
        "seed": rec.seed,
        "status": rec.status,
        "reason": rec.reason,
        "best_epoch": _int_or_none(m.get("best_epoch")),
        "epochs_run": _int_or_none(m.get("epochs_run")),
        "test": rec.test,
    }


def summarize_model(records: Sequence[RunRecord], seeds: Sequence[int]) -> dict[str, Any]:
    """The per-model block of the summary (records in `seeds` order)."""
    ok = [r for r in records if r.status == "ok"]
    entry: dict[str, Any] = {
        "seeds": list(seeds),
        "runs": [_run_entry(r) for r in records],
        "n_ok": len(ok),
        "n_collapsed": sum(r.status == "collapsed" for r in records),
        "n_missing": sum(r.status == "missing" for r in records),
    }
    best = max(ok, key=lambda r: r.test["f1"], default=None)  # max keeps the first on ties
    entry["best_seed"] = best.seed if best else None
    entry["best_f1"] = best.test["f1"] if best else None
    for name in METRICS:
        entry[f"mean_{name}"], entry[f"std_{name}"] = mean_std(r.test[name] for r in ok)
    return entry


def build_summary(records: Sequence[RunRecord], seeds: Sequence[int], models: Sequence[str]) -> dict[str, Any]:
    by_model: dict[str, Any] = {}
    for name in models:
        by_model[name] = summarize_model([r for r in records if r.model == name], seeds)
    ranked = [(n, e["mean_f1"]) for n, e in by_model.items() if e["mean_f1"] is not None]
    best = max(ranked, key=lambda item: item[1], default=(None, None))
    return {
        "seeds": list(seeds),
        "statistics": {"std_ddof": 1, "best_overall_by": "mean_f1"},
        "models": by_model,
        "best_overall_model": best[0],
        "best_overall_f1": best[1],
    }


def stability_row(rec: RunRecord) -> dict[str, Any]:
    """One row of training_stability.csv, from metrics.json and metrics_history.csv."""
    h = rec.history

    def numeric(name: str) -> np.ndarray | None:
        """A history column as floats (unparseable cells become NaN), or None when absent."""
        if h is None or name not in h.columns:
            return None
        return pd.to_numeric(h[name], errors="coerce").to_numpy(dtype=float)

    def finite(arr: np.ndarray | None) -> np.ndarray:
        return np.empty(0) if arr is None else arr[np.isfinite(arr)]

    m = rec.metrics or {}
    row: dict[str, Any] = {
        "model": rec.model, "seed": rec.seed, "status": rec.status,
        "collapsed": {"ok": "false", "collapsed": "true"}.get(rec.status),  # unknown for missing runs
        "reason": rec.reason,
        "best_epoch": _int_or_none(m.get("best_epoch")),
        "epochs_run": _int_or_none(m.get("epochs_run")),
        "history": rec.history_note,
    }
    epochs = finite(numeric("epoch"))
    if epochs.size:
        row["final_epoch"] = int(epochs.max())
    grad_all = numeric("grad_norm_before_clip")
    grad = finite(grad_all)
    if grad_all is not None:
        row["grad_norm_nonfinite_epochs"] = int(grad_all.size - grad.size)  # overflowed (AMP) or missing
    if grad.size:
        row["grad_norm_min"], row["grad_norm_max"] = float(grad.min()), float(grad.max())
        row["grad_norm_max_over_min"] = float(grad.max() / grad.min()) if grad.min() > 0 else None
        row["grad_norm_std"] = float(grad.std(ddof=1)) if grad.size >= 2 else 0.0
    skipped = numeric("skipped_steps")
    if skipped is not None:
        row["skipped_steps_total"] = int(finite(skipped).sum())
    losses = [x for x in (numeric("train_loss"), numeric("val_loss")) if x is not None]
    if losses:
        row["nonfinite_loss_epochs"] = int((~np.all([np.isfinite(x) for x in losses], axis=0)).sum())
    return {c: row.get(c) for c in STABILITY_COLUMNS}


def stability_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=STABILITY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _check_plan(seeds: Sequence[int], models: Sequence[str]) -> None:
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expected a non-empty list of distinct integers, got {list(seeds)!r}")
    if not models or any(not isinstance(m, str) or not m for m in models) or len(set(models)) != len(models):
        raise ConfigError(f"models: expected a non-empty list of distinct names, got {list(models)!r}")


def aggregate(outputs_dir: str | os.PathLike, out_dir: str | os.PathLike, *, models: Sequence[str],
              seeds: Sequence[int] = DEFAULT_SEEDS, baseline_dir: str | os.PathLike | None = None,
              test_split: str | os.PathLike | None = None, n_boot: int = DEFAULT_N_BOOT) -> dict[str, Any]:
    """Read every (model, seed) run under `outputs_dir` and write the production summary to `out_dir`.

    Writes production_summary.json (validated against summary_schema.json before anything is
    written), production_report.md, training_stability.csv, metrics_comparison.png and
    f1_by_seed.png, all reproducible byte for byte from the same run files. Returns the summary
    dict. Collapsed and missing runs are marked, not fatal.

    With `test_split` (the `splits/test.jsonl` the runs' test_predictions.npy follow) the summary gains
    `comparisons` (realistic metrics per run and model) and `statistics.comparison` (the bootstrap
    settings); with `baseline_dir` too (the baseline's run directory, e.g. training/outputs/tfidf_lr)
    also `baseline`, and each model's `vs_baseline` (see streamguard.report.compare). A baseline
    without usable predictions is marked unavailable and no model is compared with it.
    """
    seeds, models = list(seeds), list(models)
    _check_plan(seeds, models)
    if baseline_dir is not None and test_split is None:
        raise ConfigError("aggregate: a baseline_dir needs the test_split its predictions follow")
    out = pathlib.Path(out_dir)
    records = [load_run(outputs_dir, model, seed) for model in models for seed in seeds]
    summary = build_summary(records, seeds, models)
    if test_split is not None:
        found = compare_runs(outputs_dir, models, seeds, test_split=test_split, baseline_dir=baseline_dir,
                             n_boot=n_boot, boot_seed=DEFAULT_BOOT_SEED,
                             records={(r.model, r.seed): r for r in records})
        summary["statistics"]["comparison"] = found["settings"]
        if found["baseline"] is not None:
            summary["baseline"] = found["baseline"]
        summary["comparisons"] = found["comparisons"]
    validate_summary(summary, source=str(out / SUMMARY_JSON))
    rows = [stability_row(r) for r in records]

    plot_metrics_comparison(summary, out / COMPARISON_PNG)
    plot_f1_by_seed(summary, out / F1_BY_SEED_PNG)
    write_text_atomic(out / STABILITY_CSV, stability_csv(rows))
    write_text_atomic(out / REPORT_MD, render_report(summary, rows))
    write_json_atomic(out / SUMMARY_JSON, summary)  # last: its presence means the rest is written
    return summary
