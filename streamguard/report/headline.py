"""The small metrics files committed to git, so `dvc metrics diff` and `dvc exp show` work on a fresh
clone (the run directories themselves live in the DVC cache):

- `summary.json`: a few headline figures per model (means over the seeds' ok runs; with a baseline
  comparison also VD-S and the ROC-AUC difference from the baseline) and the baseline's own figures,
  declared as the pipeline's metrics: a compact `dvc exp show`;
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
    """Means per model; with comparisons also `vd_s` and `auc_vs_baseline` (the ROC-AUC difference of the
    seed-averaged model from the baseline, null when not compared), and the baseline's own entry."""
    comparisons = summary.get("comparisons")
    out: dict[str, Any] = {}
    for name, entry in summary["models"].items():
        row = {m: entry.get(f"mean_{m}") for m in HEADLINE} | {"n_ok": entry.get("n_ok")}
        if comparisons is not None and name in comparisons:
            vs = comparisons[name]["vs_baseline"]
            row["vd_s"] = comparisons[name]["realistic"]["vd_s"]
            row["auc_vs_baseline"] = vs["diff"] if vs else None
        out[_short(name)] = row
    base = summary.get("baseline")
    if base is not None:
        test = base.get("test") or {}
        out[_short(base["model"])] = {m: test.get(m) for m in HEADLINE}
    return out


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
