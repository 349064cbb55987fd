"""Run-directory files: metrics_history.csv, metrics.json and training_metadata.json helpers.

Public API
----------
- ``HISTORY_COLUMNS``: the contract columns of metrics_history.csv (docs/ARCHITECTURE.md); extra
  columns (``grad_norm_max``, ``optimizer_steps``, ``grad_norm_<group>`` per parameter group) follow.
- ``write_history_csv(path, rows, extra_columns)``: rewritten atomically after every epoch; NaN/inf
  and None are written as empty cells.
- ``build_metrics(...) -> dict``: the metrics.json body (contract keys only, non-finite -> null).
- ``git_commit() -> str | None``, ``library_versions() -> dict``, ``device_description(device)``.
"""
from __future__ import annotations

import csv
import io
import math
import pathlib
import platform
import subprocess
from importlib import metadata
from typing import Any, Mapping, Sequence

import torch

from ..io import write_text_atomic
from .metrics import METRIC_NAMES

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch", "lr", "train_loss", "val_loss",
    *(f"val_{m}" for m in METRIC_NAMES),
    "grad_norm_before_clip", "grad_norm_after_clip", "skipped_steps", "seconds",
)

_DISTRIBUTIONS = {"torch": "torch", "transformers": "transformers", "torch_geometric": "torch-geometric",
                  "sklearn": "scikit-learn", "numpy": "numpy"}


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


def write_history_csv(path: str | pathlib.Path, rows: Sequence[Mapping[str, Any]],
                      extra_columns: Sequence[str] = ()) -> None:
    columns = list(HISTORY_COLUMNS) + [c for c in extra_columns if c not in HISTORY_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_text_atomic(path, buf.getvalue())


def build_metrics(model: str, seed: int, status: str, lr: float, threshold: float | None,
                  best_epoch: int | None, epochs_run: int, wall_time_s: float,
                  test: Mapping[str, Any], val: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": model, "seed": int(seed), "status": status, "lr": float(lr), "threshold": threshold,
        "best_epoch": best_epoch, "epochs_run": int(epochs_run), "wall_time_s": float(wall_time_s),
        "test": {k: test.get(k) for k in METRIC_NAMES},
        "val": {k: val.get(k) for k in METRIC_NAMES},
    }


def git_commit() -> str | None:
    """HEAD of the repository holding this package; None without git or outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pathlib.Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def device_description(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "name": platform.processor() or platform.machine(),
                            "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_gb=round(props.total_memory / 2**30, 2),
                    capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
    return info
