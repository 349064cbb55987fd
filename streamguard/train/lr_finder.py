"""Learning-rate range test (quick mode: 100 optimizer steps, exponential sweep 1e-7 -> 1).

Public API
----------
- ``find_lr(model, loader, loss_fn, lr_range, *, device="auto", amp="auto", param_groups=None,
  optimizer=None, weight_decay=0.0, max_grad_norm=1.0, grad_accum=1, num_steps=100,
  start_lr=1e-7, end_lr=1.0, beta=0.98, diverge_factor=4.0, skip_start=10, skip_end=5)
  -> LRFinderResult``. The sweep uses the training setup (AMP, clipping, batch, accumulation,
  AdamW param groups with their LR multipliers) and leaves the model, the optimizer (when one is
  given) and every RNG state (python, numpy, torch, the loader's generators) as they were.
- ``suggest_lr(lrs, losses, lr_range, skip_start=10, skip_end=5, min_drop=0.05)
  -> (lr, raw_lr, confidence, reason)``.
- ``LRFinderResult``: the curve and the recommendation; ``to_dict()`` / ``from_dict()`` (the LR
  cache stores it whole, so a cache hit can still write the curve files).
- ``save_lr_outputs(result, out_dir, extra=None) -> dict[str, Path]``: ``lr_curve.csv``,
  ``lr_curve.png`` (matplotlib Agg) and ``recommended_lr.json``.

Curve and suggestion: the sweep's loss is smoothed with a debiased exponential moving average
(beta 0.98) for the plot and the divergence stop; the sweep stops early when that smoothed loss
exceeds ``diverge_factor`` x its best or the loss is NaN/inf. The suggestion is computed on the raw
losses (``skip_start`` points dropped at the start, ``skip_end`` at the end) smoothed with a centred
moving average (``centered_smooth``: no lag, no raw first points): the LR of the steepest descent
against log10(lr) within the valley, the stretch before the curve's minimum where the loss has fallen
by a tenth of its total drop (so noise before the loss starts to move cannot be picked). The
recommendation always lies in the model's ``lr_range`` (transformer 1e-5..5e-5, GNN 1e-4..1e-3 in
production), by one of these rules, each with its confidence:

- ``high``: the steepest point lies inside the range and the smoothed loss fell by at least
  ``min_drop`` (5 %) of its starting value over the trimmed curve;
- ``low``: the steepest point lay outside the range but within ``MAX_CLAMP_DECADES`` (1) of it and was
  clamped to the nearer end; it lay farther out, where a curve says nothing about the range (on the
  quick data the point sat at 1e-6 to 3e-6, where the loss has not moved yet, and clamping it to
  ``lr_min`` halved the GNN's LR), so the LR is the geometric mean of the range; or the descent was
  weak (under ``min_drop``: the curve is noise, and the LR is again the geometric mean);
- ``fallback``: the curve is unusable (fewer than 5 points after trimming, no finite points or no
  descending segment); the LR is then the geometric mean of the range.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import io
import logging
import math
import os
import pathlib
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..io import atomic_write, write_json_atomic, write_text_atomic
from .amp import Amp, resolve_amp
from .batches import batch_labels, batch_to_device, loader_generators
from .optim import ParamGroupSpec, build_optimizer
from .seeding import capture_rng_state, restore_rng_state

log = logging.getLogger("streamguard.train.lr_finder")

CURVE_CSV = "lr_curve.csv"
CURVE_PNG = "lr_curve.png"
RECOMMENDED_JSON = "recommended_lr.json"
MIN_POINTS = 5
MAX_CLAMP_DECADES = 1.0  # a steepest point farther outside the range than this is not clamped to it


@dataclasses.dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # raw loss per optimizer step
    smoothed: list[float]  # debiased EMA of the loss
    lr: float  # the recommendation, inside lr_range
    raw_lr: float | None  # steepest-slope LR before clamping; None when the curve was unusable
    confidence: str  # "high" | "low" | "fallback"
    reason: str
    lr_range: tuple[float, float]
    stop_reason: str  # "completed" | "diverged" | "nonfinite"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lr_range"] = list(self.lr_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LRFinderResult":
        def floats(values: Sequence[Any]) -> list[float]:
            return [math.nan if v is None else float(v) for v in values]  # null in JSON stood for NaN

        return cls(lrs=floats(data["lrs"]), losses=floats(data["losses"]), smoothed=floats(data["smoothed"]),
                   lr=float(data["lr"]), raw_lr=None if data["raw_lr"] is None else float(data["raw_lr"]),
                   confidence=str(data["confidence"]), reason=str(data["reason"]),
                   lr_range=(float(data["lr_range"][0]), float(data["lr_range"][1])),
                   stop_reason=str(data["stop_reason"]), settings=dict(data.get("settings", {})))


def centered_smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over a window centred on each point (shrinking at the ends): unlike the
    sweep's running average it neither lags the curve nor leaves the first points raw."""
    half = max(window // 2, 0)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(len(values))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(values))
    return (csum[hi] - csum[lo]) / (hi - lo)


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], lr_range: tuple[float, float],
               skip_start: int = 10, skip_end: int = 5, min_drop: float = 0.05) -> tuple[float, float | None, str, str]:
    """The steepest descent of the loss inside its valley: the stretch before the minimum where the
    loss has already fallen by a tenth of its total drop. Noise at the start of the sweep, where
    the loss has not moved yet, therefore cannot win."""
    lo, hi = lr_range
    fallback = math.sqrt(lo * hi)
    lr_arr = np.asarray(lrs, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    keep = np.isfinite(loss)
    lr_arr, loss = lr_arr[keep], loss[keep]
    end = len(loss) - skip_end
    lr_arr, loss = lr_arr[skip_start:end], loss[skip_start:end]
    if len(loss) < MIN_POINTS:
        return fallback, None, "fallback", f"only {len(loss)} usable points after trimming; geometric mean of range"
    curve = centered_smooth(loss, max(3, len(loss) // 10) | 1)
    bottom = int(np.argmin(curve))
    start_level = float(np.median(curve[:max(3, len(curve) // 10)]))
    total = start_level - curve[bottom]
    drop = total / max(abs(start_level), 1e-12)
    if bottom == 0 or not total > 0 or drop <= 1e-6:  # rounding makes a flat curve's slopes +-1e-17
        return fallback, None, "fallback", "the loss never decreased; geometric mean of range"
    above = np.nonzero(curve[:bottom] >= start_level - 0.1 * total)[0]
    first = int(above[-1]) if len(above) else 0
    slopes = np.gradient(curve, np.log10(lr_arr))
    idx = first + int(np.argmin(slopes[first:bottom + 1]))
    raw = float(lr_arr[idx])
    if drop < min_drop:  # a curve this flat is noise: its steepest point would put the LR anywhere
        return fallback, raw, "low", (f"weak descent: loss fell {drop:.1%} (< {min_drop:.0%}); "
                                      "geometric mean of range")
    suggestion = min(max(raw, lo), hi)
    if suggestion != raw:
        where = f"steepest descent at {raw:.3g} lies outside [{lo:.3g}, {hi:.3g}]"
        if abs(math.log10(raw / suggestion)) > MAX_CLAMP_DECADES:
            return fallback, raw, "low", f"{where} by over {MAX_CLAMP_DECADES:g} decade; geometric mean of range"
        return suggestion, raw, "low", f"{where}; clamped"
    return suggestion, raw, "high", f"steepest descent inside the range; loss fell {drop:.1%}"


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def find_lr(model: nn.Module, loader, loss_fn: Callable, lr_range: tuple[float, float], *,
            device: str | torch.device = "auto", amp: str = "auto",
            param_groups: Sequence[ParamGroupSpec] | None = None, optimizer: torch.optim.Optimizer | None = None,
            weight_decay: float = 0.0, max_grad_norm: float = 1.0, grad_accum: int = 1, num_steps: int = 100,
            start_lr: float = 1e-7, end_lr: float = 1.0, beta: float = 0.98, diverge_factor: float = 4.0,
            skip_start: int = 10, skip_end: int = 5) -> LRFinderResult:
    from .engine import resolve_device  # engine imports nothing from here; avoids a cycle at import

    lo, hi = lr_range
    if not 0 < lo <= hi:
        raise ConfigError(f"lr range must satisfy 0 < min <= max, got [{lo}, {hi}]")
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"lr_find: start_lr must be > 0 and < end_lr, got {start_lr}, {end_lr}")
    if num_steps < 2:
        raise ConfigError(f"lr_find.steps must be >= 2, got {num_steps}")
    dev = resolve_device(device) if isinstance(device, str) else device
    amp_ctl = Amp(resolve_amp(dev, amp))
    model.to(dev)
    generators = loader_generators(loader)
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_rng = capture_rng_state(generators)
    saved_optimizer = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    was_training = model.training
    if optimizer is None:
        optimizer, _ = build_optimizer(model, start_lr, weight_decay, param_groups)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stop_reason = "completed"
    try:
        model.train()
        batches = _cycle(loader)
        avg, best = 0.0, math.inf
        for i in range(num_steps):
            lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
            _set_lr(optimizer, lr)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for _ in range(grad_accum):
                batch = batch_to_device(next(batches), dev)
                labels = batch_labels(batch)
                with amp_ctl.autocast():
                    logits = model(batch)
                loss = loss_fn(logits.float(), labels.float())
                amp_ctl.backward(loss / grad_accum)
                step_loss += float(loss.detach().item()) / grad_accum
            amp_ctl.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            amp_ctl.step(optimizer)
            amp_ctl.update()
            lrs.append(lr)
            losses.append(step_loss)
            if not math.isfinite(step_loss):
                smoothed.append(math.nan)
                stop_reason = "nonfinite"
                break
            avg = beta * avg + (1 - beta) * step_loss
            value = avg / (1 - beta ** (i + 1))
            smoothed.append(value)
            if i > 0 and value > diverge_factor * best:
                stop_reason = "diverged"
                break
            best = min(best, value)
    finally:
        model.load_state_dict(saved_model)
        model.train(was_training)
        optimizer.zero_grad(set_to_none=True)
        if saved_optimizer is not None:
            optimizer.load_state_dict(saved_optimizer)
        restore_rng_state(saved_rng, generators)
    lr, raw, confidence, reason = suggest_lr(lrs, losses, (lo, hi), skip_start, skip_end)
    settings = {"num_steps": num_steps, "start_lr": start_lr, "end_lr": end_lr, "beta": beta,
                "diverge_factor": diverge_factor, "skip_start": skip_start, "skip_end": skip_end,
                "grad_accum": grad_accum, "max_grad_norm": max_grad_norm, "amp": amp_ctl.settings.name}
    log.info("lr finder: %d steps (%s), suggestion %.3g (%s: %s)", len(lrs), stop_reason, lr, confidence, reason)
    return LRFinderResult(lrs, losses, smoothed, lr, raw, confidence, reason, (lo, hi), stop_reason, settings)


def _cycle(loader):
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ConfigError("lr_find: the training loader yields no batches")


def _plot_png(result: LRFinderResult) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed loss")
    ax.axvspan(*result.lr_range, color="C2", alpha=0.15, label="allowed range")
    ax.axvline(result.lr, color="C3", linestyle="--", label=f"suggested {result.lr:.2g} ({result.confidence})")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:  # keep the divergence spike from flattening the interesting part
        top = min(max(finite), 4 * min(finite)) if min(finite) > 0 else max(finite)
        ax.set_ylim(min(finite) * 0.95 if min(finite) > 0 else None, top * 1.05 if top > 0 else None)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def save_lr_outputs(result: LRFinderResult, out_dir: str | os.PathLike,
                    extra: dict[str, Any] | None = None) -> dict[str, pathlib.Path]:
    out = pathlib.Path(out_dir)
    paths = {"csv": out / CURVE_CSV, "png": out / CURVE_PNG, "json": out / RECOMMENDED_JSON}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["step", "lr", "loss", "smoothed_loss"])
    for i, (lr, loss, sm) in enumerate(zip(result.lrs, result.losses, result.smoothed)):
        writer.writerow([i, lr, loss if math.isfinite(loss) else "", sm if math.isfinite(sm) else ""])
    write_text_atomic(paths["csv"], buf.getvalue())
    with atomic_write(paths["png"], "wb") as fh:
        fh.write(_plot_png(result))
    body = {"lr": result.lr, "raw_lr": result.raw_lr, "confidence": result.confidence, "reason": result.reason,
            "lr_range": list(result.lr_range), "stop_reason": result.stop_reason, "points": len(result.lrs),
            "settings": result.settings, **(extra or {})}
    write_json_atomic(paths["json"], body)
    return paths
