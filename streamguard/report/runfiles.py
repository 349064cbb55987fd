"""Reading one run directory as the training stages (or the baseline stage) wrote it.

Shared by `aggregate` (the per-seed runs) and `compare` (their test predictions and the baseline's),
so both judge a run's metrics.json by the same rules. Nothing here raises for a missing or malformed
run: it is marked `missing` with a one-line reason.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any

import pandas as pd

from ..errors import one_line
from ..io import loads_strict

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")


@dataclasses.dataclass
class RunRecord:
    """One run as found on disk (a (model, seed) run, or the single baseline run with seed None)."""

    model: str  # directory name, e.g. "gnn_v17"
    seed: int | None
    run_dir: pathlib.Path
    status: str  # ok | collapsed | missing
    reason: str | None = None  # why collapsed or missing; None when ok
    metrics: dict[str, Any] | None = None  # parsed metrics.json when usable
    test: dict[str, float | None] | None = None
    history: pd.DataFrame | None = None
    history_note: str = "missing"  # ok | missing | unreadable: ...


def _metric_in_range(name: str, value: float) -> bool:
    low = -1.0 if name == "mcc" else 0.0
    return math.isfinite(value) and low <= value <= 1.0


def read_test_metrics(metrics: dict[str, Any], status: str) -> tuple[dict[str, float | None] | None, str | None]:
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
                return "collapsed: " + one_line(report[key])
    return "collapsed (see collapse_report.json)"


def _read_history(run_dir: pathlib.Path) -> tuple[pd.DataFrame | None, str]:
    path = run_dir / "metrics_history.csv"
    if not path.is_file():
        return None, "missing"
    try:
        return pd.read_csv(path), "ok"
    except Exception as exc:  # pandas raises several types for malformed CSV
        return None, "unreadable: " + one_line(f"{type(exc).__name__}: {exc}")[:200]


def read_run_dir(run_dir: str | os.PathLike, model: str, seed: int | None, label: str | None = None) -> RunRecord:
    """Read the run in `run_dir`; `seed` None skips the seed check (a run without seeds, the baseline).

    `label` names the directory in reasons (default: the directory's name).
    """
    run_dir = pathlib.Path(run_dir)
    label = label or run_dir.name
    rec = RunRecord(model=model, seed=seed, run_dir=run_dir, status="missing")
    if not run_dir.is_dir():
        rec.reason = f"run directory {label} not found"
        return rec
    rec.history, rec.history_note = _read_history(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        rec.reason = "metrics.json not found"
        return rec
    try:
        metrics = loads_strict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        rec.reason = "metrics.json is not valid strict JSON: " + one_line(exc)
        return rec
    if not isinstance(metrics, dict):
        rec.reason = "metrics.json is not a JSON object"
        return rec
    status = metrics.get("status")
    if status not in ("ok", "collapsed"):
        rec.reason = f"metrics.json field 'status' is {status!r}, expected 'ok' or 'collapsed'"
        return rec
    file_seed = metrics.get("seed")
    if (seed is not None and isinstance(file_seed, int) and not isinstance(file_seed, bool)
            and file_seed != seed):
        rec.reason = f"metrics.json field 'seed' is {file_seed}, but the directory is seed_{seed}"
        return rec
    test, problem = read_test_metrics(metrics, status)
    if problem:
        rec.reason = problem
        return rec
    rec.status, rec.metrics, rec.test = status, metrics, test
    rec.reason = _collapse_reason(run_dir) if status == "collapsed" else None
    return rec


def load_run(outputs_dir: str | os.PathLike, model: str, seed: int) -> RunRecord:
    """Read `{outputs_dir}/{model}/seed_{seed}`; never raises for a missing or malformed run, it marks it instead."""
    return read_run_dir(pathlib.Path(outputs_dir) / model / f"seed_{seed}", model, seed,
                        label=f"{model}/seed_{seed}")
