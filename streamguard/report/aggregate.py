"""Aggregate the per-seed run directories into the production summary.

Reads only files on disk: `{outputs_dir}/{model}/seed_{S}/metrics.json` (`model` is a run-directory
name such as `gnn_v17`, as the model kinds name them), `metrics_history.csv`
and, when present, `collapse_report.json`. A run is `ok`, `collapsed` (its metrics.json says so) or
`missing` (no directory, no/corrupt metrics.json, or a metrics.json that breaks the contract); only
ok runs enter the means. std is the sample std (ddof=1) over ok runs, 0.0 for a single ok run and
null for none. `best_overall_model` is the model with the highest mean test F1 (first in `models`
order on a tie); `best_seed` is the ok seed with the highest test F1 (first in `seeds` order on a tie).

The output directory is a DVC out: every file in it is a function of the run files alone (no dates,
no wall times), so aggregating the same runs twice writes identical bytes. Wall times are in each
run's run_log.json (see streamguard.train.outputs), which aggregate does not read.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pathlib
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import loads_strict, write_json_atomic, write_text_atomic
from .markdown import render_report
from .plots import plot_f1_by_seed, plot_metrics_comparison
from .validate import validate_summary

DEFAULT_SEEDS = (42, 2025, 7)
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")

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


@dataclasses.dataclass
class RunRecord:
    """One (model, seed) run as found on disk."""

    model: str  # directory name, e.g. "gnn_v17"
    seed: int
    run_dir: pathlib.Path
    status: str  # ok | collapsed | missing
    reason: str | None = None  # why collapsed or missing; None when ok
    metrics: dict[str, Any] | None = None  # parsed metrics.json when usable
    test: dict[str, float | None] | None = None
    history: pd.DataFrame | None = None
    history_note: str = "missing"  # ok | missing | unreadable: ...


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _metric_in_range(name: str, value: float) -> bool:
    low = -1.0 if name == "mcc" else 0.0
    return math.isfinite(value) and low <= value <= 1.0


def _read_test_metrics(metrics: dict[str, Any], status: str) -> tuple[dict[str, float | None] | None, str | None]:
    """(test metrics, problem). Absent metrics become None; a value of the wrong type or range is a problem."""
    test = metrics.get("test")
    if test is None and status == "collapsed":
        return None, None
    if not isinstance(test, dict):
        return None, "metrics.json field 'test' is missing or not an object"
    out: dict[str, float | None] = {}
    for name in METRICS:
        value = test.get(name)
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _metric_in_range(name, float(value)):
            return None, f"metrics.json field 'test.{name}' has invalid value {value!r}"
        out[name] = float(value)
    if status == "ok" and out["f1"] is None:
        return None, "metrics.json field 'test.f1' is null or absent in an ok run"
    return out, None


def _collapse_reason(run_dir: pathlib.Path) -> str:
    """A short reason for a collapsed run, from collapse_report.json when it has one."""
    path = run_dir / "collapse_report.json"
    try:
        report = loads_strict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return "status 'collapsed' in metrics.json"
    if isinstance(report, dict):
        for key in ("reason", "message", "summary", "cause", "kind"):
            if isinstance(report.get(key), str) and report[key].strip():
                return "collapsed: " + _one_line(report[key])
    return "collapsed (see collapse_report.json)"


def _read_history(run_dir: pathlib.Path) -> tuple[pd.DataFrame | None, str]:
    path = run_dir / "metrics_history.csv"
    if not path.is_file():
        return None, "missing"
    try:
        return pd.read_csv(path), "ok"
    except Exception as exc:  # pandas raises several types for malformed CSV
        return None, "unreadable: " + _one_line(f"{type(exc).__name__}: {exc}")[:200]


def load_run(outputs_dir: str | os.PathLike, model: str, seed: int) -> RunRecord:
    """Read one run directory; never raises for a missing or malformed run, it marks it instead."""
    name = model
    run_dir = pathlib.Path(outputs_dir) / name / f"seed_{seed}"
    rec = RunRecord(model=name, seed=seed, run_dir=run_dir, status="missing")
    if not run_dir.is_dir():
        rec.reason = f"run directory {name}/seed_{seed} not found"
        return rec
    rec.history, rec.history_note = _read_history(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        rec.reason = "metrics.json not found"
        return rec
    try:
        metrics = loads_strict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        rec.reason = "metrics.json is not valid strict JSON: " + _one_line(exc)
        return rec
    if not isinstance(metrics, dict):
        rec.reason = "metrics.json is not a JSON object"
        return rec
    status = metrics.get("status")
    if status not in ("ok", "collapsed"):
        rec.reason = f"metrics.json field 'status' is {status!r}, expected 'ok' or 'collapsed'"
        return rec
    file_seed = metrics.get("seed")
    if isinstance(file_seed, int) and not isinstance(file_seed, bool) and file_seed != seed:
        rec.reason = f"metrics.json field 'seed' is {file_seed}, but the directory is seed_{seed}"
        return rec
    test, problem = _read_test_metrics(metrics, status)
    if problem:
        rec.reason = problem
        return rec
    rec.status, rec.metrics, rec.test = status, metrics, test
    rec.reason = _collapse_reason(run_dir) if status == "collapsed" else None
    return rec


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
              seeds: Sequence[int] = DEFAULT_SEEDS) -> dict[str, Any]:
    """Read every (model, seed) run under `outputs_dir` and write the production summary to `out_dir`.

    Writes production_summary.json (validated against summary_schema.json before anything is
    written), production_report.md, training_stability.csv, metrics_comparison.png and
    f1_by_seed.png, all reproducible byte for byte from the same run files. Returns the summary
    dict. Collapsed and missing runs are marked, not fatal.
    """
    seeds, models = list(seeds), list(models)
    _check_plan(seeds, models)
    out = pathlib.Path(out_dir)
    records = [load_run(outputs_dir, model, seed) for model in models for seed in seeds]
    summary = build_summary(records, seeds, models)
    validate_summary(summary, source=str(out / SUMMARY_JSON))
    rows = [stability_row(r) for r in records]

    plot_metrics_comparison(summary, out / COMPARISON_PNG)
    plot_f1_by_seed(summary, out / F1_BY_SEED_PNG)
    write_text_atomic(out / STABILITY_CSV, stability_csv(rows))
    write_text_atomic(out / REPORT_MD, render_report(summary, rows))
    write_json_atomic(out / SUMMARY_JSON, summary)  # last: its presence means the rest is written
    return summary
