"""The training loop: anything that maps a batch to one logit per sample.

Entry point
-----------
``train(model, loaders, loss_fn, cfg, out_dir, run_info, param_groups=None, epoch_callbacks=())
-> RunResult``

- ``model(batch)`` returns logits of shape ``[B]`` (positive = vulnerable).
- ``loaders``: ``{"train": ..., "val": ..., "test": ...}`` (``test`` optional), built with
  ``make_loader`` so their generators are seeded; batches are dicts with ``labels`` or PyG batches.
- ``loss_fn(logits [B] float32, labels [B] float32) -> scalar mean`` (see ``losses.make_loss``).
- ``cfg``: ``TrainConfig``; ``run_info``: ``RunInfo(model_name, seed, dataset_hash, config,
  config_sources, extra)``; ``param_groups``: ``list[ParamGroupSpec]`` (LR multipliers per part).
- ``epoch_callbacks``: called with each finished epoch's history row (a dict), e.g. to collect
  per-group gradient norms (columns ``grad_norm_<group>``) for gradient_stats.json.

Also: ``Trainer`` (the same loop, step by step: ``train_epoch()``, ``run()``), ``predict(model,
loader, device, amp=None, loss_fn=None) -> Predictions``, ``resolve_device(name)``,
``batch_to_device``, ``batch_labels``, ``make_loader``, ``load_best_weights(path)``.

What one step does (AMP order as in nanoGPT): autocast forward -> loss / micro-batches in the
accumulation window -> scaled backward; at the window's end unscale_ -> gradient norms (total and
per group) -> clip to ``max_grad_norm`` -> step (skipped when the loss or gradients are not finite)
-> scaler update -> scheduler step. Every epoch: validation metrics at threshold 0.5, collapse
check, early stopping on ``cfg.monitor`` (best weights kept), history row, checkpoint.

At the end the best weights are restored, the decision threshold is tuned on validation (max F1)
and applied to validation and test for metrics.json. History rows report validation metrics at 0.5.

Files written in ``out_dir`` (all atomically): ``metrics.json``, ``metrics_history.csv``,
``training_metadata.json``, ``model_checkpoint.pt`` and, after a collapse, ``collapse_report.json``.

``model_checkpoint.pt`` (loaded with ``weights_only=True``) keeps the best weights in the same file
as the resumable state, so the two can never disagree: keys ``best_model``, ``model``,
``optimizer``, ``scheduler``, ``scaler``, ``rng`` (python, numpy, torch, CUDA and every loader /
sampler generator), ``epoch``, ``global_step``, ``best_metric``, ``best_epoch``, ``bad_epochs``,
``history``, ``collapse``, ``wall_time_s``, ``stop_reason``, ``config`` (canonical JSON),
``dataset_hash``. Once a run finishes, the file is rewritten without ``model``, ``optimizer``,
``scheduler`` and ``scaler`` (nothing left to resume); ``best_model`` is what inference loads.

Resume: when ``out_dir`` holds a checkpoint, training continues from its last finished epoch
(refusing with ``CheckpointError`` if the dataset hash or config differ) and ends with the same
metrics as an uninterrupted run on CPU; a finished run only rewrites its output files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import pathlib
import sys
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import CheckpointError, ConfigError
from ..io import load_torch, safe_jsonify, save_torch_atomic, write_json_atomic
from .amp import Amp, resolve_amp
from .batches import batch_labels, batch_to_device, loader_generators, make_loader, set_loader_epoch
from .collapse import CollapseConfig, CollapseDetector
from .metrics import METRIC_NAMES, compute_metrics, empty_metrics, reduce_predictions, tune_threshold
from .optim import ParamGroupSpec, build_optimizer, build_scheduler
from .outputs import build_metrics, device_description, git_commit, library_versions, write_history_csv
from .seeding import capture_rng_state, restore_rng_state, seed_everything

__all__ = [
    "TrainConfig", "RunInfo", "RunResult", "Predictions", "ParamGroupSpec", "Trainer", "train", "predict",
    "resolve_device", "batch_to_device", "batch_labels", "make_loader", "load_best_weights",
    "CHECKPOINT_FILE", "METRICS_FILE", "HISTORY_FILE", "METADATA_FILE", "COLLAPSE_FILE",
]

log = logging.getLogger("streamguard.train.engine")

CHECKPOINT_FILE = "model_checkpoint.pt"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "metrics_history.csv"
METADATA_FILE = "training_metadata.json"
COLLAPSE_FILE = "collapse_report.json"
CHECKPOINT_FORMAT = 1
_MONITORS = ("val_loss", *(f"val_{m}" for m in METRIC_NAMES))
# Settings that do not change what a run computes; a resumed run may differ in them.
_NON_RESULT_FIELDS = ("progress",)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    patience: int = 3  # epochs without improvement before stopping; 0 disables early stopping
    monitor: str = "val_f1"  # a history column (val_loss, val_f1, val_roc_auc, ...); "f1" means "val_f1"
    min_delta: float = 0.0
    amp: str = "auto"  # auto | bf16 | fp16 | fp32 | off (see amp.resolve_amp)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    decay_embeddings: bool = False
    deterministic: bool = True
    collapse: CollapseConfig = dataclasses.field(default_factory=CollapseConfig)
    progress: bool | None = None  # None: a bar on a terminal, quiet under CI or without a tty

    def __post_init__(self) -> None:
        if self.monitor in METRIC_NAMES or self.monitor == "loss":
            object.__setattr__(self, "monitor", f"val_{self.monitor}")

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
            (self.grad_accum >= 1, "grad_accum", "must be >= 1"),
            (self.max_grad_norm > 0, "max_grad_norm", "must be > 0"),
            (self.patience >= 0, "patience", "must be >= 0"),
            (self.monitor in _MONITORS, "monitor", f"must be one of {', '.join(_MONITORS)}"),
        ]
        for ok, field, msg in checks:
            if not ok:
                raise ConfigError(f"train.{field}: {msg} (got {getattr(self, field)!r})")


@dataclasses.dataclass(frozen=True)
class RunInfo:
    model_name: str
    seed: int
    dataset_hash: str | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # resolved config of the run
    config_sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # key -> where it came from
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # more metadata, e.g. hardware


@dataclasses.dataclass
class Predictions:
    labels: np.ndarray  # int64 [N]
    probs: np.ndarray  # float64 [N]
    loss: float | None  # sample-weighted mean loss, None without loss_fn


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


def resolve_device(name: str = "auto") -> torch.device:
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"train.device: '{name}' requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_logits(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.dim() != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{type(model).__name__}(batch) must return one logit per sample, shape "
                         f"[{labels.shape[0]}], got {list(logits.shape)}")


def predict(model: nn.Module, loader, device: torch.device | str, amp: Amp | None = None,
            loss_fn: Callable | None = None) -> Predictions:
    """Positive-class probabilities (and mean loss) over a loader, in loader order."""
    model.eval()
    chunks = []
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    autocast = amp.autocast if amp is not None else contextlib.nullcontext
    with torch.inference_mode():
        for batch in loader:
            batch = batch_to_device(batch, device)
            labels = batch_labels(batch)
            with autocast():
                logits = model(batch)
            logits = logits.float()
            _check_logits(model, logits, labels)
            if loss_fn is not None:
                loss_sum += loss_fn(logits, labels.float()).double() * labels.shape[0]
            chunks.append((labels, torch.sigmoid(logits)))
    y, p = reduce_predictions(chunks)
    loss = float(loss_sum.item()) / max(1, y.size) if loss_fn is not None else None
    return Predictions(y, p, loss)


def load_best_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The best model state dict from a run's model_checkpoint.pt."""
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("best_model") is None:
        raise CheckpointError(f"{path}: field 'best_model' is missing; the run never finished an epoch")
    return ckpt["best_model"]


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _show_progress(cfg: TrainConfig) -> bool:
    if cfg.progress is not None:
        return cfg.progress
    return sys.stderr.isatty() and not os.environ.get("CI")


class Trainer:
    """One training run; ``train()`` is ``Trainer(...).run()``."""

    def __init__(self, model: nn.Module, loaders: Mapping[str, Any], loss_fn: Callable, cfg: TrainConfig,
                 out_dir: str | os.PathLike, run_info: RunInfo,
                 param_groups: Sequence[ParamGroupSpec] | None = None,
                 epoch_callbacks: Sequence[Callable[[dict[str, Any]], None]] = ()):
        cfg.validate()
        for split in ("train", "val"):
            if split not in loaders:
                raise ConfigError(f"train(): loaders must contain '{split}'")
        self.cfg, self.run_info, self.loss_fn = cfg, run_info, loss_fn
        self.loaders = dict(loaders)
        self.out_dir = pathlib.Path(out_dir)
        self.epoch_callbacks = list(epoch_callbacks)
        seed_everything(run_info.seed, cfg.deterministic)
        self.device = resolve_device(cfg.device)
        self.amp = Amp(resolve_amp(self.device, cfg.amp))
        self.model = model.to(self.device)
        self.optimizer, self.group_params = build_optimizer(
            self.model, cfg.lr, cfg.weight_decay, param_groups, cfg.decay_embeddings)
        self.all_params = [p for params in self.group_params.values() for p in params]
        self.micro_batches = len(self.loaders["train"])
        if self.micro_batches == 0:
            raise ConfigError("train(): the training loader yields no batches")
        self.steps_per_epoch = math.ceil(self.micro_batches / cfg.grad_accum)
        self.scheduler = build_scheduler(self.optimizer, self.steps_per_epoch * cfg.epochs, cfg.warmup_ratio)
        self.collapse = CollapseDetector(cfg.collapse)
        self.generators = [g for split in sorted(self.loaders) for g in loader_generators(self.loaders[split])]
        self.config_json = self._canonical_config(param_groups)
        self.show_progress = _show_progress(cfg)
        # Run state (what the checkpoint carries).
        self.epoch = 0
        self.global_step = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        self.wall_time_prev = 0.0
        self.stop_reason: str | None = None
        self.collapse_report: dict[str, Any] | None = None
        self.resumed_from: int | None = None
        self._checked_logits = False
        self._session_start = time.perf_counter()
        self._started_at = _dt.datetime.now(_dt.timezone.utc)

    # ----------------------------------------------------------------- config / checkpoint
    def _canonical_config(self, specs: Sequence[ParamGroupSpec] | None) -> str:
        train_cfg = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k not in _NON_RESULT_FIELDS}
        groups = [{"name": s.name, "lr_mult": s.lr_mult, "weight_decay": s.weight_decay} for s in specs or []]
        body = {"model": self.run_info.model_name, "seed": self.run_info.seed, "train": train_cfg,
                "param_groups": groups, "run": self.run_info.config}
        return json.dumps(safe_jsonify(body), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.out_dir / CHECKPOINT_FILE

    def _state(self, final: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "global_step": self.global_step,
            "best_model": self.best_state, "best_metric": self.best_metric, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs, "history": self.history, "collapse": self.collapse.state_dict(),
            "collapse_report": self.collapse_report, "wall_time_s": self.wall_time(),
            "stop_reason": self.stop_reason, "config": self.config_json,
            "dataset_hash": self.run_info.dataset_hash, "rng": capture_rng_state(self.generators),
        }
        if not final:
            state.update(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                         scheduler=self.scheduler.state_dict(), scaler=self.amp.state_dict())
        return state

    def save_checkpoint(self, final: bool = False) -> None:
        save_torch_atomic(self.checkpoint_path, self._state(final))

    def _verify(self, ckpt: Any) -> None:
        path = self.checkpoint_path
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: field 'format' is not {CHECKPOINT_FORMAT}; delete it to start over")
        if ckpt.get("dataset_hash") != self.run_info.dataset_hash:
            raise CheckpointError(
                f"{path}: field 'dataset_hash' is {ckpt.get('dataset_hash')!r} but this run's data is "
                f"{self.run_info.dataset_hash!r}; use a new output directory or delete the checkpoint")
        if ckpt.get("config") != self.config_json:
            old, new = json.loads(ckpt.get("config") or "{}"), json.loads(self.config_json)
            diff = sorted(_diff_keys(old, new))
            raise CheckpointError(
                f"{path}: field 'config' differs from this run's config (at {', '.join(diff[:5]) or '?'}); "
                "use a new output directory or delete the checkpoint")

    def resume(self) -> bool:
        """Load the checkpoint in out_dir if there is one; True when a run was resumed."""
        if not self.checkpoint_path.exists():
            return False
        ckpt = load_torch(self.checkpoint_path)
        self._verify(ckpt)
        self.epoch, self.global_step = ckpt["epoch"], ckpt["global_step"]
        self.best_state, self.best_metric = ckpt["best_model"], ckpt["best_metric"]
        self.best_epoch, self.bad_epochs = ckpt["best_epoch"], ckpt["bad_epochs"]
        self.history = list(ckpt["history"])
        self.collapse.load_state_dict(ckpt["collapse"])
        self.collapse_report = ckpt["collapse_report"]
        self.wall_time_prev, self.stop_reason = ckpt["wall_time_s"], ckpt["stop_reason"]
        if self.stop_reason is None:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.amp.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"], self.generators)
        self.resumed_from = self.epoch
        log.info("resumed %s from %s at epoch %d%s", self.run_info.model_name, self.checkpoint_path, self.epoch,
                 f" (finished: {self.stop_reason})" if self.stop_reason else "")
        return True

    def wall_time(self) -> float:
        return self.wall_time_prev + (time.perf_counter() - self._session_start)

    # ----------------------------------------------------------------- the loop
    def base_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return group["lr"] / group["lr_mult"]

    def _forward_loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        batch = batch_to_device(batch, self.device)
        labels = batch_labels(batch)
        with self.amp.autocast():
            logits = self.model(batch)
        if not self._checked_logits:
            _check_logits(self.model, logits, labels)
            self._checked_logits = True
        return self.loss_fn(logits.float(), labels.float()), labels.shape[0]

    def _optimizer_step(self, losses: list[torch.Tensor], sizes: list[int], stats: dict[str, Any]) -> None:
        self.amp.unscale_(self.optimizer)
        group_norms = [torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
                       if any(p.grad is not None for p in params) else torch.zeros((), device=self.device)
                       for params in self.group_params.values()]
        total = group_norms[0] if len(group_norms) == 1 else torch.nn.utils.get_total_norm(group_norms)
        torch.nn.utils.clip_grads_with_norm_(
            [p for p in self.all_params if p.grad is not None], self.cfg.max_grad_norm, total)
        # One host sync per optimizer step for every number the step logs and checks.
        values = torch.stack([*(v.float() for v in losses), total.float(), *(g.float() for g in group_norms)]).tolist()
        micro_losses, norm_v, group_v = values[:len(losses)], values[len(losses)], values[len(losses) + 1:]
        loss_v = sum(micro_losses) / len(micro_losses)  # the window's loss, as the scaled backward saw it
        stats["loss_sum"] += sum(v * n for v, n in zip(micro_losses, sizes))
        stats["samples"] += sum(sizes)
        finite = math.isfinite(loss_v) and math.isfinite(norm_v)
        lr = self.base_lr()
        if self.amp.scaler.is_enabled():
            self.amp.step(self.optimizer)  # the scaler skips non-finite steps itself
            skipped = self.amp.update()
        elif finite:
            self.optimizer.step()
            skipped = False
        else:
            skipped = True
        self.optimizer.zero_grad(set_to_none=True)
        if skipped:
            with warnings.catch_warnings():  # a skipped first step makes LambdaLR warn about the call order
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.scheduler.step()
        else:
            self.scheduler.step()
        self.global_step += 1
        measured = None if (self.amp.scaler.is_enabled() and not math.isfinite(norm_v)) else norm_v
        # Per-group norms let the detector see one component (e.g. the fusion layer) stop learning.
        groups = dict(zip(self.group_params, group_v)) if len(group_v) > 1 and measured is not None else None
        self.collapse.observe_step(self.global_step, self.epoch + 1, lr, loss_v, measured, groups)
        stats["steps"] += 1
        stats["skipped"] += int(skipped)
        stats["lr"] = lr
        if math.isfinite(norm_v):
            after = norm_v * min(1.0, self.cfg.max_grad_norm / (norm_v + 1e-6))  # clip_grads_with_norm_'s factor
            stats["norm_sum"] += norm_v
            stats["after_sum"] += after
            stats["norm_max"] = max(stats["norm_max"], norm_v)
            stats["norm_count"] += 1
            for name, value in zip(self.group_params, group_v):
                stats["group_sums"][name] += value

    def train_epoch(self) -> dict[str, Any]:
        """One pass over the training loader; returns the epoch's training statistics."""
        self.model.train()
        loader = self.loaders["train"]
        set_loader_epoch(loader, self.epoch)
        accum, n = self.cfg.grad_accum, self.micro_batches
        stats: dict[str, Any] = {"steps": 0, "skipped": 0, "norm_sum": 0.0, "after_sum": 0.0, "norm_max": 0.0,
                                 "norm_count": 0, "lr": self.base_lr(), "loss_sum": 0.0, "samples": 0,
                                 "group_sums": {name: 0.0 for name in self.group_params}}
        losses: list[torch.Tensor] = []
        sizes: list[int] = []
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(loader, total=n, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self.show_progress)
        for i, batch in enumerate(bar):
            # Micro-batches in this accumulation window (the last window of an epoch may be shorter).
            window = min(accum, n - (i // accum) * accum)
            loss, size = self._forward_loss(batch)
            if loss.requires_grad:
                self.amp.backward(loss / window if window > 1 else loss)
            losses.append(loss.detach())
            sizes.append(size)
            if (i + 1) % accum == 0 or i + 1 == n:
                self._optimizer_step(losses, sizes, stats)
                losses, sizes = [], []
                if self.collapse.collapsed:
                    break
        bar.close()
        stats["train_loss"] = stats["loss_sum"] / max(1, stats["samples"])
        return stats

    def _history_row(self, stats: dict[str, Any], val: Predictions, metrics: dict[str, Any],
                     seconds: float) -> dict[str, Any]:
        count = max(1, stats["norm_count"])
        row: dict[str, Any] = {
            "epoch": self.epoch, "lr": stats["lr"], "train_loss": stats["train_loss"], "val_loss": val.loss,
            **{f"val_{k}": metrics[k] for k in METRIC_NAMES},
            "grad_norm_before_clip": stats["norm_sum"] / count if stats["norm_count"] else None,
            "grad_norm_after_clip": stats["after_sum"] / count if stats["norm_count"] else None,
            "skipped_steps": stats["skipped"], "seconds": seconds,
            "grad_norm_max": stats["norm_max"] if stats["norm_count"] else None,
            "optimizer_steps": stats["steps"],
        }
        for name, total in stats["group_sums"].items():
            row[f"grad_norm_{name}"] = total / count if stats["norm_count"] else None
        return row

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        if self.cfg.monitor == "val_loss":
            return value < self.best_metric - self.cfg.min_delta
        return value > self.best_metric + self.cfg.min_delta

    def _extra_columns(self) -> list[str]:
        return ["grad_norm_max", "optimizer_steps", *[f"grad_norm_{name}" for name in self.group_params]]

    def run_epoch(self) -> dict[str, Any] | None:
        """Train one epoch, validate, update early stopping, write history and checkpoint.

        Returns the history row, or None when the epoch was cut short by a collapse.
        """
        start = time.perf_counter()
        stats = self.train_epoch()
        if self.collapse.collapsed:
            return None
        self.epoch += 1
        val = predict(self.model, self.loaders["val"], self.device, self.amp, self.loss_fn)
        metrics = compute_metrics(val.labels, val.probs)
        self.collapse.observe_validation(self.global_step, self.epoch, stats["lr"], val.probs)
        row = self._history_row(stats, val, metrics, time.perf_counter() - start)
        value = row[self.cfg.monitor]
        if self._improved(value):
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.best_state = _cpu_state(self.model)
        else:
            self.bad_epochs += 1
        self.history.append(row)
        log.info("epoch %d/%d %s: train_loss=%.4f val_loss=%s %s=%s grad_norm=%s->%s skipped=%d (%.1fs)",
                 self.epoch, self.cfg.epochs, self.run_info.model_name, row["train_loss"], _fmt(row["val_loss"]),
                 self.cfg.monitor, _fmt(value), _fmt(row["grad_norm_before_clip"]),
                 _fmt(row["grad_norm_after_clip"]), row["skipped_steps"], row["seconds"])
        if not self.collapse.collapsed:
            if self.cfg.patience and self.bad_epochs >= self.cfg.patience:
                self.stop_reason = "early_stopping"
            elif self.epoch >= self.cfg.epochs:
                self.stop_reason = "max_epochs"
        if self.stop_reason is None and not self.collapse.collapsed:
            self.save_checkpoint()  # the final checkpoint is written by finish()
        write_history_csv(self.out_dir / HISTORY_FILE, self.history, self._extra_columns())
        for callback in self.epoch_callbacks:
            callback(row)
        return row

    def _on_collapse(self) -> None:
        self.stop_reason = "collapsed"
        current = predict(self.model, self.loaders["val"], self.device, self.amp)
        self.collapse_report = self.collapse.report(current.probs)
        log.warning("%s collapsed at step %d: %s", self.run_info.model_name, self.global_step, self.collapse.reason)

    def run(self) -> RunResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        self.write_metadata("running")
        while self.stop_reason is None:
            self.run_epoch()
            if self.collapse.collapsed:
                self._on_collapse()
        return self.finish()

    # ----------------------------------------------------------------- the end
    def finish(self) -> RunResult:
        status = "collapsed" if self.stop_reason == "collapsed" else "ok"
        if self.best_state is None and status == "ok":
            # The monitor never had a value (e.g. single-class validation): keep the last weights.
            self.best_state, self.best_epoch = _cpu_state(self.model), self.epoch
        val = test = None
        threshold: float | None = None
        val_metrics = test_metrics = empty_metrics()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            val = predict(self.model, self.loaders["val"], self.device, self.amp, self.loss_fn)
            threshold = tune_threshold(val.labels, val.probs)
            val_metrics = compute_metrics(val.labels, val.probs, threshold)
            if "test" in self.loaders:
                test = predict(self.model, self.loaders["test"], self.device, self.amp, self.loss_fn)
                test_metrics = compute_metrics(test.labels, test.probs, threshold)
        metrics = build_metrics(self.run_info.model_name, self.run_info.seed, status, self.cfg.lr, threshold,
                                self.best_epoch, len(self.history), self.wall_time(), test_metrics, val_metrics)
        self.save_checkpoint(final=True)
        write_history_csv(self.out_dir / HISTORY_FILE, self.history, self._extra_columns())
        if self.collapse_report is not None:
            write_json_atomic(self.out_dir / COLLAPSE_FILE, self.collapse_report)
        write_json_atomic(self.out_dir / METRICS_FILE, metrics)
        self.write_metadata(status)
        log.info("%s seed %d finished (%s): best_epoch=%s threshold=%s test_f1=%s", self.run_info.model_name,
                 self.run_info.seed, self.stop_reason, self.best_epoch, _fmt(threshold), _fmt(test_metrics["f1"]))
        return RunResult(status, self.stop_reason or "max_epochs", metrics, list(self.history), self.out_dir,
                         val, test)

    def write_metadata(self, status: str) -> None:
        ended = _dt.datetime.now(_dt.timezone.utc) if status != "running" else None
        meta = {
            "model": self.run_info.model_name,
            "status": status,
            "stop_reason": self.stop_reason,
            "config": {"train": self.cfg, "run": self.run_info.config},
            "config_sources": self.run_info.config_sources,
            "seeds": {"run": self.run_info.seed},
            "dataset_hash": self.run_info.dataset_hash,
            "git_commit": git_commit(),
            "versions": library_versions(),
            "device": device_description(self.device),
            "amp": {"dtype": self.amp.settings.name, "grad_scaler": self.amp.settings.use_scaler,
                    "reason": self.amp.settings.reason},
            "optimizer": {"name": "AdamW", "groups": [
                {"name": g["name"], "lr_mult": g["lr_mult"], "weight_decay": g["weight_decay"],
                 "num_params": sum(p.numel() for p in g["params"])} for g in self.optimizer.param_groups]},
            "schedule": {"steps_per_epoch": self.steps_per_epoch, "total_steps": self.steps_per_epoch * self.cfg.epochs,
                         "warmup_ratio": self.cfg.warmup_ratio, "grad_accum": self.cfg.grad_accum},
            "timings": {"session_started_at": self._started_at, "ended_at": ended,
                        "wall_time_s": self.wall_time(), "resumed_from_epoch": self.resumed_from,
                        "epoch_seconds": [row["seconds"] for row in self.history]},
            "extra": self.run_info.extra,
        }
        write_json_atomic(self.out_dir / METADATA_FILE, meta)


def _diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _diff_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k)]
    return [] if old == new else [prefix or "<root>"]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def train(model: nn.Module, loaders: Mapping[str, Any], loss_fn: Callable, cfg: TrainConfig,
          out_dir: str | os.PathLike, run_info: RunInfo, param_groups: Sequence[ParamGroupSpec] | None = None,
          epoch_callbacks: Sequence[Callable[[dict[str, Any]], None]] = ()) -> RunResult:
    """Train ``model`` and write the run directory; see the module docstring."""
    return Trainer(model, loaders, loss_fn, cfg, out_dir, run_info, param_groups, epoch_callbacks).run()
