"""The training loop: anything that maps a batch to one logit per sample.

``train(model, loaders, loss_fn, cfg, out_dir, run_info, param_groups=None) -> RunResult``

- ``model(batch)`` returns logits of shape ``[B]`` (positive = vulnerable).
- ``loaders``: ``{"train": ..., "val": ..., "test": ...}`` (``test`` optional), built with
  ``make_loader`` so their generators are seeded; batches are dicts with ``labels`` or PyG batches.
- ``loss_fn(logits [B] float32, labels [B] float32) -> scalar mean`` (see ``losses.make_loss``).
- ``cfg``: ``LoopConfig``; ``run_info``: ``RunInfo(model_name, seed, dataset_hash, config,
  config_sources, extra, log_dir)``, whose ``extra["model_spec"]`` the checkpoint keeps too;
  ``param_groups``: ``list[ParamGroupSpec]`` (LR multipliers per part).

``Trainer`` is the same loop step by step (``start()``, ``run_epoch()``, ``finish()``; ``run()`` does
what is left). Re-exported here: ``predict``, ``Predictions``, ``resolve_device``,
``batch_to_device``, ``batch_labels``, ``make_loader`` (``batches``); ``load_best_weights``,
``load_model_spec``, ``CHECKPOINT_FILE`` (``checkpoint``); ``RunInfo``, ``RunResult`` (``outputs``).

One step (AMP order as in nanoGPT): autocast forward -> loss / micro-batches in the accumulation
window -> scaled backward; at the window's end unscale_ -> gradient norms (total and per group) ->
clip to ``max_grad_norm`` -> step (skipped when the loss or gradients are not finite) -> scaler
update -> scheduler step. Every epoch: validation metrics at threshold 0.5, collapse check, early
stopping on ``cfg.monitor`` (best weights kept), history row, checkpoint. At the end the best
weights are restored and the threshold chosen on validation (`threshold_policy`, max F1 by default) is applied to validation and
test for metrics.json.

Files in ``out_dir`` (all written atomically): ``metrics.json``, ``metrics_history.csv``,
``training_metadata.json``, ``model_checkpoint.pt`` (see ``checkpoint``) and, after a collapse,
``collapse_report.json``. They hold no wall-clock values, so identical runs write identical bytes;
times, host and git commit go to ``run_log.json`` in ``run_info.log_dir`` (default ``out_dir``; see
``outputs``). When ``out_dir`` holds a checkpoint the run resumes from its last finished
epoch (``CheckpointError`` if dataset hash, config or model spec differ) and ends with the same
metrics as an uninterrupted run on CPU; a finished run only rewrites its output files.

Under torchrun (``distributed.current().enabled``) the same loop runs on every rank: the training
forward goes through DDP (``no_sync`` inside an accumulation window), the training loader yields the
rank's share of each window (``batches.ShardedBatchSampler``), the step's losses and gradient norms
are summed over ranks before anything is decided on them, rank 0 evaluates the full split and shares
the predictions, and only rank 0 writes (docs/distributed.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import pathlib
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..io import save_numpy_atomic, write_json_atomic
from . import checkpoint, distributed
from .amp import Amp, resolve_amp
from .batches import (Predictions, ShardedBatchSampler, batch_labels, batch_to_device, check_logits,
                      loader_generators, make_loader, predict, resolve_device, set_loader_epoch, shard_loader)
from .checkpoint import CHECKPOINT_FILE, CHECKPOINT_FORMAT, load_best_weights, load_model_spec
from .collapse import CollapseConfig, CollapseDetector
from .metrics import METRIC_NAMES, choose_threshold, compute_metrics, empty_metrics
from .optim import ParamGroupSpec, build_optimizer, build_scheduler, scheduler_step
from .outputs import (RUN_LOG_FILE, EpochStats, RunInfo, RunResult, build_metadata, build_metrics, build_run_log,
                      git_commit, history_extra_columns, run_log_path, utc_now, write_history_csv)
from .seeding import seed_everything

__all__ = [
    "LoopConfig", "RunInfo", "RunResult", "Predictions", "ParamGroupSpec", "Trainer", "train",
    "predict", "resolve_device", "batch_to_device", "batch_labels", "make_loader", "load_best_weights",
    "load_model_spec", "show_progress", "CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "METRICS_FILE", "HISTORY_FILE",
    "METADATA_FILE", "COLLAPSE_FILE", "RUN_LOG_FILE",
]

log = logging.getLogger("streamguard.train.engine")

METRICS_FILE = "metrics.json"
HISTORY_FILE = "metrics_history.csv"
METADATA_FILE = "training_metadata.json"
COLLAPSE_FILE = "collapse_report.json"
TEST_PREDICTIONS_FILE = "test_predictions.npy"
_MONITORS = ("val_loss", *(f"val_{m}" for m in METRIC_NAMES))


@dataclasses.dataclass(frozen=True)
class LoopConfig:
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
    threshold_policy: str = "f1"  # how the decision threshold is chosen on validation (metrics.choose_threshold)
    target_fpr: float | None = None  # with threshold_policy "fpr"
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


def show_progress(cfg: LoopConfig) -> bool:
    """Whether the loop draws a progress bar: ``cfg.progress``, or by default only on a terminal outside CI."""
    if cfg.progress is not None:
        return cfg.progress
    return sys.stderr.isatty() and not os.environ.get("CI")


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class Trainer:
    """One training run; ``train()`` is ``Trainer(...).run()``."""

    def __init__(self, model: nn.Module, loaders: Mapping[str, Any], loss_fn: Callable, cfg: LoopConfig,
                 out_dir: str | os.PathLike, run_info: RunInfo, param_groups: Sequence[ParamGroupSpec] | None = None):
        cfg.validate()
        for split in ("train", "val"):
            if split not in loaders:
                raise ConfigError(f"train(): loaders must contain '{split}'")
        self.cfg, self.run_info, self.loss_fn = cfg, run_info, loss_fn
        self.loaders = dict(loaders)
        self.out_dir = pathlib.Path(out_dir)
        self.log_path = run_log_path(out_dir, run_info)
        seed_everything(run_info.seed, cfg.deterministic)
        self.dist = distributed.current()
        self.device = self.dist.device_for(resolve_device(cfg.device))
        self.amp = Amp(resolve_amp(self.device, cfg.amp))
        self.model = model.to(self.device)  # the plain module: evaluated, checkpointed, returned
        # Under torchrun the training forward goes through DDP and the training loader yields this
        # rank's share of each window (batches.ShardedBatchSampler); one process is left as it was.
        self.ddp = distributed.wrap(self.model, self.device) if self.dist.enabled else self.model
        self.shards: ShardedBatchSampler | None = None
        if self.dist.enabled:
            self.loaders["train"] = shard_loader(self.loaders["train"], self.dist.rank, self.dist.world_size,
                                                 cfg.grad_accum)
            self.shards = self.loaders["train"].batch_sampler
        self.accum = self.shards.grad_accum if self.shards is not None else cfg.grad_accum  # per rank
        self.optimizer, self.group_params = build_optimizer(
            self.model, cfg.lr, cfg.weight_decay, param_groups, cfg.decay_embeddings)
        self.all_params = [p for params in self.group_params.values() for p in params]
        self.micro_batches = len(self.loaders["train"])
        if self.micro_batches == 0:
            raise ConfigError("train(): the training loader yields no batches")
        self.steps_per_epoch = math.ceil(self.micro_batches / self.accum)
        self.scheduler = build_scheduler(self.optimizer, self.steps_per_epoch * cfg.epochs, cfg.warmup_ratio)
        self.collapse = CollapseDetector(cfg.collapse)
        self.generators = [g for split in sorted(self.loaders) for g in loader_generators(self.loaders[split])]
        # What a checkpoint must match to be resumed by this run.
        self.config_json = checkpoint.canonical_config(cfg, run_info, param_groups)
        self.model_spec = checkpoint.model_spec_of(run_info)
        self._progress = show_progress(cfg)
        # Run state (what the checkpoint carries).
        self.epoch = 0
        self.global_step = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        # Wall-clock accounting: only in run_log.json and an unfinished checkpoint, never in the outputs.
        self.wall_time_prev = 0.0  # of earlier sessions of this run
        self.epoch_seconds: list[float | None] = []
        self.stop_reason: str | None = None
        self.collapse_report: dict[str, Any] | None = None
        self.resumed_from: int | None = None
        self._started = False
        self._checked_logits = False
        self._session_start = time.perf_counter()
        self.session_started_at = utc_now()
        self.started_at = self.session_started_at  # a resume puts back the first session's
        self._commit: str | None = None
        self.seed_rank()

    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.out_dir / CHECKPOINT_FILE

    def wall_time(self) -> float:
        return self.wall_time_prev + (time.perf_counter() - self._session_start)

    def seed_rank(self) -> None:
        """Give every rank but 0 its own dropout stream (rank 0 keeps one process's), per epoch so a resume agrees."""
        if self.dist.enabled and self.dist.rank > 0:
            torch.manual_seed(self.run_info.seed * 1_000_003 + self.dist.rank * 10_007 + self.epoch)

    def evaluate(self, split: str, loss_fn: Callable | None = None) -> Predictions:
        """Predictions of the plain model over a whole split: computed on rank 0 and shared, so every
        rank decides (early stopping, collapse, best weights) from the same numbers one process would see."""
        if not self.dist.enabled:
            return predict(self.model, self.loaders[split], self.device, self.amp, loss_fn)
        return distributed.on_main(predict, self.model, self.loaders[split], self.device, self.amp, loss_fn)

    # ----------------------------------------------------------------- the loop
    def base_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return group["lr"] / group["lr_mult"]

    def _forward_loss(self, batch: Any) -> tuple[torch.Tensor, int]:
        batch = batch_to_device(batch, self.device)
        labels = batch_labels(batch)
        with self.amp.autocast():
            logits = self.ddp(batch)
        if not self._checked_logits:
            check_logits(self.model, logits, labels)
            self._checked_logits = True
        return self.loss_fn(logits.float(), labels.float()), labels.shape[0]

    def _optimizer_step(self, losses: list[torch.Tensor], sizes: list[int], stats: EpochStats) -> None:
        self.amp.unscale_(self.optimizer)
        group_norms = [torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
                       if any(p.grad is not None for p in params) else torch.zeros((), device=self.device)
                       for params in self.group_params.values()]
        total = group_norms[0] if len(group_norms) == 1 else torch.nn.utils.get_total_norm(group_norms)
        torch.nn.utils.clip_grads_with_norm_(
            [p for p in self.all_params if p.grad is not None], self.cfg.max_grad_norm, total)
        # One host sync per optimizer step for every number the step logs and checks.
        if self.shards is None:
            values = torch.stack([*(v.float() for v in losses), total.float(), *(g.float() for g in group_norms)]).tolist()
            micro_losses, norm_v, group_v = values[:len(losses)], values[len(losses)], values[len(losses) + 1:]
            loss_v = sum(micro_losses) / len(micro_losses)  # the window's loss, as the scaled backward saw it
        else:
            micro_losses, sizes, loss_v, norm_v, group_v = self._reduce_step(losses, sizes, total, group_norms)
        finite = math.isfinite(loss_v) and math.isfinite(norm_v)
        lr = self.base_lr()
        skipped = self.amp.step_if_finite(self.optimizer, finite)
        self.optimizer.zero_grad(set_to_none=True)
        scheduler_step(self.scheduler, skipped)
        self.global_step += 1
        measured = None if (self.amp.scaler.is_enabled() and not math.isfinite(norm_v)) else norm_v
        # Per-group norms let the detector see one component (e.g. the fusion layer) stop learning.
        groups = dict(zip(self.group_params, group_v)) if len(group_v) > 1 and measured is not None else None
        self.collapse.observe_step(self.global_step, self.epoch + 1, lr, loss_v, measured, groups)
        stats.add_step(lr, micro_losses, sizes, skipped, norm_v, self.cfg.max_grad_norm, group_v)

    def _reduce_step(self, losses: list[torch.Tensor], sizes: list[int], total: torch.Tensor,
                     group_norms: list[torch.Tensor]) -> tuple[list[float], list[int], float, float, list[float]]:
        """The window's numbers summed over ranks, in one collective: every rank then skips, logs and
        checks for collapse on the same values (so all stop together), those one process would have."""
        first = self.shards_seen - len(losses)
        weights = self.shards.weights[first:self.shards_seen]
        local = torch.stack([
            sum(w * v.double() for w, v in zip(weights, losses)),  # world x the window's loss
            sum(n * v.double() for n, v in zip(sizes, losses)),  # sample-weighted loss sum
            torch.tensor(float(sum(sizes)), dtype=torch.float64, device=self.device),
            total.double(), *(g.double() for g in group_norms)])
        values = distributed.all_reduce_sum(local).tolist()
        world = self.dist.world_size
        samples = values[2]
        # Identical gradients on every rank: the mean of their norms is each one's norm.
        return ([values[1] / max(samples, 1.0)], [int(samples)], values[0] / world, values[3] / world,
                [v / world for v in values[4:]])

    def train_epoch(self) -> EpochStats:
        """One pass over the training loader; returns the epoch's training statistics."""
        self.model.train()
        loader = self.loaders["train"]
        set_loader_epoch(loader, self.epoch)
        self.seed_rank()
        accum, n = self.accum, self.micro_batches
        stats = EpochStats(self.base_lr(), list(self.group_params))
        losses: list[torch.Tensor] = []
        sizes: list[int] = []
        self.optimizer.zero_grad(set_to_none=True)
        self.shards_seen = 0
        bar = tqdm(loader, total=n, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self._progress)
        for i, batch in enumerate(bar):
            # Micro-batches in this accumulation window (the last window of an epoch may be shorter).
            window = min(accum, n - (i // accum) * accum)
            ends_window = (i + 1) % accum == 0 or i + 1 == n
            # DDP averages gradients over ranks at the backward that ends a window, not before.
            with contextlib.nullcontext() if ends_window or self.shards is None else self.ddp.no_sync():
                loss, size = self._forward_loss(batch)
                if self.shards is not None:
                    scaled, size = loss * self.shards.weights[i], self.shards.sizes[i]
                else:
                    scaled = loss / window if window > 1 else loss
                if loss.requires_grad:
                    self.amp.backward(scaled)
            self.shards_seen = i + 1
            losses.append(loss.detach())
            sizes.append(size)
            if ends_window:
                self._optimizer_step(losses, sizes, stats)
                losses, sizes = [], []
                if self.collapse.collapsed:
                    break
        bar.close()
        return stats

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        if self.cfg.monitor == "val_loss":
            return value < self.best_metric - self.cfg.min_delta
        return value > self.best_metric + self.cfg.min_delta

    def _write_history(self) -> None:
        write_history_csv(self.out_dir / HISTORY_FILE, self.history, history_extra_columns(self.group_params))

    def run_epoch(self) -> dict[str, Any] | None:
        """Train one epoch, validate, update early stopping, write history and checkpoint.

        Returns the history row, or None when the epoch was cut short by a collapse.
        """
        start = time.perf_counter()
        stats = self.train_epoch()
        if self.collapse.collapsed:
            return None
        self.epoch += 1
        val = self.evaluate("val", self.loss_fn)
        metrics = compute_metrics(val.labels, val.probs)
        self.collapse.observe_validation(self.global_step, self.epoch, stats.lr, val.probs)
        row = stats.row(self.epoch, val.loss, metrics)
        self.epoch_seconds.append(time.perf_counter() - start)
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
                 _fmt(row["grad_norm_after_clip"]), row["skipped_steps"], self.epoch_seconds[-1])
        if not self.collapse.collapsed:
            if self.cfg.patience and self.bad_epochs >= self.cfg.patience:
                self.stop_reason = "early_stopping"
            elif self.epoch >= self.cfg.epochs:
                self.stop_reason = "max_epochs"
        distributed.ensure_same((self.epoch, self.stop_reason, self.collapse.collapsed), "the stop decision")
        if self.stop_reason is None and not self.collapse.collapsed:
            checkpoint.save_checkpoint(self)  # the final one is written by finish()
        self._write_history()
        self.write_run_log("running")
        return row

    def _on_collapse(self) -> None:
        self.stop_reason = "collapsed"
        current = self.evaluate("val")
        self.collapse_report = self.collapse.report(current.probs)
        log.warning("%s collapsed at step %d: %s", self.run_info.model_name, self.global_step, self.collapse.reason)

    def start(self) -> bool:
        """Create out_dir, resume from its checkpoint if any (then True), mark the run as running."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = checkpoint.resume(self)
        self._commit = git_commit()
        self.write_metadata("running")
        self.write_run_log("running")
        self._started = True
        return resumed

    def run(self) -> RunResult:
        if not self._started:
            self.start()
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
            val = self.evaluate("val", self.loss_fn)
            threshold = choose_threshold(val.labels, val.probs, self.cfg.threshold_policy, self.cfg.target_fpr)
            val_metrics = compute_metrics(val.labels, val.probs, threshold)
            if "test" in self.loaders:
                test = self.evaluate("test", self.loss_fn)
                test_metrics = compute_metrics(test.labels, test.probs, threshold)
                # Per-sample scores in test-split order: what the report's paired comparisons need.
                save_numpy_atomic(self.out_dir / TEST_PREDICTIONS_FILE, np.asarray(test.probs, dtype=np.float32))
        metrics = build_metrics(self.run_info.model_name, self.run_info.seed, status, self.cfg.lr, threshold,
                                self.best_epoch, len(self.history), test_metrics, val_metrics)
        checkpoint.save_checkpoint(self, final=True)
        self._write_history()
        if self.collapse_report is not None:
            write_json_atomic(self.out_dir / COLLAPSE_FILE, self.collapse_report)
        write_json_atomic(self.out_dir / METRICS_FILE, metrics)
        self.write_metadata(status)
        self.write_run_log(status)
        log.info("%s seed %d finished (%s): best_epoch=%s threshold=%s test_f1=%s", self.run_info.model_name,
                 self.run_info.seed, self.stop_reason, self.best_epoch, _fmt(threshold), _fmt(test_metrics["f1"]))
        return RunResult(status, self.stop_reason or "max_epochs", metrics, list(self.history), self.out_dir,
                         val, test)

    def write_metadata(self, status: str) -> None:
        meta = build_metadata(self.run_info, self.cfg, status, self.stop_reason, self.device, self.amp.settings,
                              self.optimizer, self.steps_per_epoch, self.distributed_settings())
        write_json_atomic(self.out_dir / METADATA_FILE, meta)

    def distributed_settings(self) -> dict[str, Any]:
        """training_metadata.json's ``distributed``: how many processes shared each window, and each one's part."""
        train = self.loaders["train"]
        sampler = getattr(train, "batch_sampler", None)
        batch = train.batch_size if getattr(train, "batch_size", None) is not None else getattr(sampler, "batch_size", None)
        return {**self.dist.describe(), "per_rank_batch": batch, "per_rank_grad_accum": self.accum}

    def write_run_log(self, status: str) -> None:
        body = build_run_log(self.run_info, status, self.out_dir, self.started_at, self.session_started_at,
                             None if status == "running" else utc_now(), self.wall_time(), self.epoch_seconds,
                             self.resumed_from, self._commit)
        write_json_atomic(self.log_path, body)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def train(model: nn.Module, loaders: Mapping[str, Any], loss_fn: Callable, cfg: LoopConfig,
          out_dir: str | os.PathLike, run_info: RunInfo,
          param_groups: Sequence[ParamGroupSpec] | None = None) -> RunResult:
    """Train ``model`` and write the run directory; see the module docstring."""
    return Trainer(model, loaders, loss_fn, cfg, out_dir, run_info, param_groups).run()
