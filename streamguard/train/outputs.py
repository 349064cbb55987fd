"""What a run is, writes and returns: metrics_history.csv rows, metrics.json, training_metadata.json, run_log.json.

The run directory holds only what a rerun with the same inputs reproduces byte for byte (it is a
DVC out, hashed into dvc.lock); everything that differs between identical runs (wall times, dates,
host, git commit) goes to ``run_log.json`` in ``RunInfo.log_dir`` instead.

Public API
----------
- ``RunInfo(model_name, seed, dataset_hash, config, config_sources, extra, log_dir)``: who the run
  is, as metrics.json and training_metadata.json tell it (``extra["model_spec"]`` also goes into the
  checkpoint), and where its run log goes (None: the run's out_dir). ``RunResult``: what
  ``engine.train`` returns (status, stop reason, metrics.json body, history, out_dir, validation and
  test predictions of the best weights).
- ``HISTORY_COLUMNS``: the contract columns of metrics_history.csv (docs/ARCHITECTURE.md); extra
  columns (``grad_norm_max``, ``optimizer_steps``, ``grad_norm_<group>`` per parameter group) follow.
- ``EpochStats(lr, groups)``: one epoch's optimizer steps, summed step by step (``add_step``);
  ``row(epoch, val_loss, val_metrics)`` is the epoch's history row and
  ``history_extra_columns(groups)`` the columns after the contract ones.
- ``write_history_csv(path, rows, extra_columns)``: rewritten atomically after every epoch; NaN/inf
  and None are written as empty cells.
- ``build_metrics(...) -> dict``: the metrics.json body (contract keys only, non-finite -> null).
- ``build_metadata(...) -> dict``: the training_metadata.json body (with ``distributed``: world size,
  backend, per-rank batch and accumulation).
- ``RUN_LOG_FILE``, ``run_log_path(out_dir, run_info)``, ``build_run_log(...) -> dict`` (the
  run_log.json body), ``read_run_log(path) -> dict | None`` (None when absent or unreadable) and
  ``utc_now()`` (its time stamps).
- ``git_commit() -> str | None``, ``library_versions() -> dict``, ``device_description(device)``.

run_log.json (strict JSON, rewritten at the start, at each epoch end and at the finish):
``model``, ``seed``, ``status`` (running | ok | collapsed), ``out_dir``, ``started_at`` (UTC ISO-8601,
the run's first start, kept across resumes), ``session_started_at`` (this process), ``ended_at``
(null while running), ``wall_time_s`` (total over every session, up to this write),
``epoch_seconds`` (one per history row; null where a resumed run could not know it),
``resumed_from_epoch`` (null for a fresh start), ``git_commit`` (null outside a repository),
``hostname``.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import math
import os
import pathlib
import platform
import socket
import subprocess
from importlib import metadata
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from ..io import loads_strict, write_text_atomic
from .metrics import METRIC_NAMES

if TYPE_CHECKING:
    from .amp import AmpSettings
    from .batches import Predictions
    from .engine import LoopConfig

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch", "lr", "train_loss", "val_loss",
    *(f"val_{m}" for m in METRIC_NAMES),
    "grad_norm_before_clip", "grad_norm_after_clip", "skipped_steps",
)
RUN_LOG_FILE = "run_log.json"

_DISTRIBUTIONS = {"torch": "torch", "transformers": "transformers", "torch_geometric": "torch-geometric",
                  "sklearn": "scikit-learn", "numpy": "numpy"}


@dataclasses.dataclass(frozen=True)
class RunInfo:
    model_name: str
    seed: int
    dataset_hash: str | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # resolved config of the run
    config_sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # key -> where it came from
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # more metadata, e.g. model_spec
    # Where run_log.json goes; None: the out_dir. Not part of the run's identity (not in the checkpoint config).
    log_dir: str | os.PathLike | None = None


@dataclasses.dataclass
class RunResult:
    status: str  # "ok" | "collapsed"
    stop_reason: str  # "max_epochs" | "early_stopping" | "collapsed"
    metrics: dict[str, Any]  # the metrics.json body
    history: list[dict[str, Any]]
    out_dir: pathlib.Path
    val: Predictions | None = None
    test: Predictions | None = None

    @property
    def threshold(self) -> float | None:
        return self.metrics["threshold"]

    @property
    def best_epoch(self) -> int | None:
        return self.metrics["best_epoch"]


@dataclasses.dataclass
class EpochStats:
    """One epoch's optimizer steps, summed as they come."""

    lr: float  # base LR (multiplier 1) of the latest step
    groups: Sequence[str]  # parameter group names, for the grad_norm_<group> columns
    steps: int = 0
    skipped: int = 0
    loss_sum: float = 0.0  # sample-weighted
    samples: int = 0
    norm_sum: float = 0.0
    after_sum: float = 0.0
    norm_max: float = 0.0
    norm_count: int = 0  # steps with a finite gradient norm; the means are over these
    group_sums: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.group_sums = {name: 0.0 for name in self.groups}

    def add_step(self, lr: float, micro_losses: Sequence[float], sizes: Sequence[int], skipped: bool,
                 norm: float, max_norm: float, group_norms: Sequence[float]) -> None:
        self.loss_sum += sum(v * n for v, n in zip(micro_losses, sizes))
        self.samples += sum(sizes)
        self.steps += 1
        self.skipped += int(skipped)
        self.lr = lr
        if math.isfinite(norm):
            self.norm_sum += norm
            self.after_sum += norm * min(1.0, max_norm / (norm + 1e-6))  # clip_grads_with_norm_'s factor
            self.norm_max = max(self.norm_max, norm)
            self.norm_count += 1
            for name, value in zip(self.groups, group_norms):
                self.group_sums[name] += value

    @property
    def train_loss(self) -> float:
        return self.loss_sum / max(1, self.samples)

    def row(self, epoch: int, val_loss: float | None, val_metrics: Mapping[str, Any]) -> dict[str, Any]:
        count = max(1, self.norm_count)
        measured = self.norm_count > 0
        row: dict[str, Any] = {
            "epoch": epoch, "lr": self.lr, "train_loss": self.train_loss, "val_loss": val_loss,
            **{f"val_{k}": val_metrics[k] for k in METRIC_NAMES},
            "grad_norm_before_clip": self.norm_sum / count if measured else None,
            "grad_norm_after_clip": self.after_sum / count if measured else None,
            "skipped_steps": self.skipped,
            "grad_norm_max": self.norm_max if measured else None,
            "optimizer_steps": self.steps,
        }
        for name, total in self.group_sums.items():
            row[f"grad_norm_{name}"] = total / count if measured else None
        return row


def history_extra_columns(groups: Sequence[str]) -> list[str]:
    return ["grad_norm_max", "optimizer_steps", *[f"grad_norm_{name}" for name in groups]]


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
                  best_epoch: int | None, epochs_run: int,
                  test: Mapping[str, Any], val: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": model, "seed": int(seed), "status": status, "lr": float(lr), "threshold": threshold,
        "best_epoch": best_epoch, "epochs_run": int(epochs_run),
        "test": {k: test.get(k) for k in METRIC_NAMES},
        "val": {k: val.get(k) for k in METRIC_NAMES},
    }


def build_metadata(run_info: RunInfo, train_cfg: LoopConfig, status: str, stop_reason: str | None,
                   device: torch.device, amp: AmpSettings, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int, distributed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``distributed``: ``world_size``, ``backend`` (null for one process), ``per_rank_batch``, ``per_rank_grad_accum``."""
    return {
        "model": run_info.model_name,
        "status": status,
        "stop_reason": stop_reason,
        "config": {"train": train_cfg, "run": run_info.config},
        "config_sources": run_info.config_sources,
        "seeds": {"run": run_info.seed},
        "dataset_hash": run_info.dataset_hash,
        "versions": library_versions(),
        "device": device_description(device),
        "amp": {"dtype": amp.name, "grad_scaler": amp.use_scaler, "reason": amp.reason},
        "optimizer": {"name": "AdamW", "groups": [
            {"name": g["name"], "lr_mult": g["lr_mult"], "weight_decay": g["weight_decay"],
             "num_params": sum(p.numel() for p in g["params"])} for g in optimizer.param_groups]},
        "schedule": {"steps_per_epoch": steps_per_epoch, "total_steps": steps_per_epoch * train_cfg.epochs,
                     "warmup_ratio": train_cfg.warmup_ratio, "grad_accum": train_cfg.grad_accum},
        "distributed": dict(distributed or {"world_size": 1, "backend": None}),
        "extra": run_info.extra,
    }


def run_log_path(out_dir: str | os.PathLike, run_info: RunInfo) -> pathlib.Path:
    return pathlib.Path(run_info.log_dir if run_info.log_dir is not None else out_dir) / RUN_LOG_FILE


def build_run_log(run_info: RunInfo, status: str, out_dir: str | os.PathLike, started_at: str,
                  session_started_at: str, ended_at: str | None, wall_time_s: float,
                  epoch_seconds: Sequence[float | None], resumed_from_epoch: int | None,
                  commit: str | None) -> dict[str, Any]:
    return {
        "model": run_info.model_name, "seed": int(run_info.seed), "status": status, "out_dir": str(out_dir),
        "started_at": started_at, "session_started_at": session_started_at, "ended_at": ended_at,
        "wall_time_s": float(wall_time_s), "epoch_seconds": list(epoch_seconds),
        "resumed_from_epoch": resumed_from_epoch, "git_commit": commit, "hostname": socket.gethostname(),
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def read_run_log(path: str | os.PathLike) -> dict[str, Any] | None:
    """A run log written before, or None: it only feeds timings, so a missing or damaged one is no error."""
    try:
        body = loads_strict(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


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
