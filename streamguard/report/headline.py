"""The small metrics files committed to git, so `dvc metrics diff` and `dvc exp show` work on a fresh
clone (the run directories themselves live in the DVC cache):

- `summary.json`: a few headline figures per model (means over the seeds' ok runs), declared as the
  pipeline's metrics: a compact `dvc exp show`;
- `runs.json`: every run's test and validation metrics, for `dvc metrics show metrics/runs.json` and
  `dvc metrics diff --targets metrics/runs.json`.

Both are built from production_summary.json and the runs' metrics.json only, so they hold no
run-varying values (no wall times) and reproduce bit for bit with the runs.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

from ..io import read_json, write_json_atomic

HEADLINE = ("roc_auc", "pr_auc", "f1", "accuracy")
SUMMARY_FILE = "summary.json"
RUNS_FILE = "runs.json"


def _short(model_dir: str) -> str:
    """transformer_v17 -> transformer: the column names of `dvc exp show` stay short."""
    return model_dir.rsplit("_v", 1)[0] if model_dir.rsplit("_v", 1)[-1].isdigit() else model_dir


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {_short(name): {m: entry.get(f"mean_{m}") for m in HEADLINE} | {"n_ok": entry.get("n_ok")}
            for name, entry in summary["models"].items()}


def per_run(outputs_dir: str | os.PathLike, models: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for name in models:
        for seed in seeds:
            path = pathlib.Path(outputs_dir) / name / f"seed_{seed}" / "metrics.json"
            try:
                metrics = read_json(path)
            except (OSError, ValueError):
                continue  # missing or corrupt runs are marked in the summary already
            runs.setdefault(_short(name), {})[f"seed_{seed}"] = {
                "status": metrics.get("status"), "threshold": metrics.get("threshold"),
                "test": metrics.get("test"), "val": metrics.get("val"),
                **({"oof": metrics["oof"]} if "oof" in metrics else {})}
    return runs


def write_metrics_files(summary: Mapping[str, Any], outputs_dir: str | os.PathLike, models: Sequence[str],
                        seeds: Sequence[int], metrics_dir: str | os.PathLike) -> dict[str, pathlib.Path]:
    out = pathlib.Path(metrics_dir)
    paths = {"summary": out / SUMMARY_FILE, "runs": out / RUNS_FILE}
    write_json_atomic(paths["summary"], headline(summary))
    write_json_atomic(paths["runs"], per_run(outputs_dir, models, seeds))
    return paths
