"""Training-collapse detection.

Public API
----------
- ``CollapseConfig(enabled=True, patience=3, explode_grad_norm=1e4, zero_grad_eps=0.0,
  min_pred_std=1e-4, flag_single_class=False, keep=50)``.
- ``CollapseDetector(cfg)``: ``observe_step(step, epoch, lr, loss, grad_norm, group_norms=None)`` after every optimizer
  step and ``observe_validation(step, epoch, lr, probs)`` after every validation pass; each returns
  the event kind or None. ``collapsed`` turns True after ``patience`` consecutive events (counted
  separately for steps and for validation passes). ``report(probs=None)`` is the body of
  collapse_report.json; ``state_dict()`` / ``load_state_dict()`` carry the state through checkpoints.
- ``prediction_histogram(probs, bins=10)``.

Event kinds:
- ``nonfinite_loss``: loss is NaN/inf (the engine skips that optimizer step);
- ``nonfinite_grad``: finite loss, non-finite gradient norm while no GradScaler handles overflow;
- ``zero_grad``: gradient norm <= ``zero_grad_eps`` (or no parameter received a gradient), overall or
  in any one parameter group (e.g. the fusion layer) while the others still learn;
- ``exploding_grad``: gradient norm before clipping > ``explode_grad_norm``;
- ``constant_predictions``: validation probabilities with std < ``min_pred_std`` (or NaN), or, with
  ``flag_single_class``, every validation sample predicted as one class at 0.5. A single-class
  prediction alone is not an event by default: the decision threshold is tuned later.
"""
from __future__ import annotations

import collections
import logging
import dataclasses
import math
from typing import Any

import numpy as np

log = logging.getLogger("streamguard.train.collapse")

STEP_KINDS = ("nonfinite_loss", "nonfinite_grad", "zero_grad", "exploding_grad")
VAL_KINDS = ("constant_predictions",)


@dataclasses.dataclass(frozen=True)
class CollapseConfig:
    enabled: bool = True
    patience: int = 3
    explode_grad_norm: float = 1e4
    zero_grad_eps: float = 0.0
    min_pred_std: float = 1e-4
    flag_single_class: bool = False
    keep: int = 50  # recent losses / grad norms / events kept for the report


def prediction_histogram(probs: np.ndarray | None, bins: int = 10) -> dict[str, Any] | None:
    if probs is None:
        return None
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    finite = p[np.isfinite(p)]
    counts, edges = np.histogram(finite, bins=bins, range=(0.0, 1.0))
    return {"bin_edges": edges.tolist(), "counts": counts.tolist(), "nonfinite": int(p.size - finite.size),
            "n": int(p.size)}


class CollapseDetector:
    def __init__(self, cfg: CollapseConfig | None = None):
        self.cfg = cfg or CollapseConfig()
        self.events: collections.deque = collections.deque(maxlen=max(self.cfg.keep, self.cfg.patience))
        self.losses: collections.deque = collections.deque(maxlen=self.cfg.keep)
        self.grad_norms: collections.deque = collections.deque(maxlen=self.cfg.keep)
        self.step_streak = 0
        self.val_streak = 0
        self.total_events = 0
        self.last = {"step": 0, "epoch": 0, "lr": None}
        self.reason: str | None = None

    @property
    def collapsed(self) -> bool:
        return self.reason is not None

    def _record(self, kind: str | None, streak_attr: str, step: int, epoch: int, lr: float, value: Any) -> str | None:
        self.last = {"step": int(step), "epoch": int(epoch), "lr": lr}
        if kind is None or not self.cfg.enabled:
            setattr(self, streak_attr, 0)
            return None
        streak = getattr(self, streak_attr) + 1
        setattr(self, streak_attr, streak)
        self.total_events += 1
        self.events.append({"kind": kind, "step": int(step), "epoch": int(epoch), "lr": lr, "value": value})
        log.warning("collapse event %s at step %d (epoch %d, %d in a row): %s", kind, step, epoch, streak, value)
        if streak >= self.cfg.patience and self.reason is None:
            self.reason = f"{streak} consecutive collapse events, last: {kind}"
        return kind

    def observe_step(self, step: int, epoch: int, lr: float, loss: float, grad_norm: float | None,
                     group_norms: dict[str, float] | None = None) -> str | None:
        """``grad_norm=None`` means not measured (e.g. the GradScaler skipped an overflowing step).

        ``group_norms`` (parameter group -> gradient norm) also flags a single dead component: a
        group whose gradient is zero while the others still learn is a ``zero_grad`` event.
        """
        self.losses.append(loss)
        if grad_norm is not None:
            self.grad_norms.append(grad_norm)
        kind, value = None, None
        if not math.isfinite(loss):
            kind, value = "nonfinite_loss", loss
        elif grad_norm is not None and not math.isfinite(grad_norm):
            kind, value = "nonfinite_grad", grad_norm
        elif grad_norm is not None and grad_norm <= self.cfg.zero_grad_eps:
            kind, value = "zero_grad", grad_norm
        elif grad_norm is not None and grad_norm > self.cfg.explode_grad_norm:
            kind, value = "exploding_grad", grad_norm
        elif group_norms:
            dead = sorted(name for name, norm in group_norms.items() if norm <= self.cfg.zero_grad_eps)
            if dead:
                kind, value = "zero_grad", {"groups": dead}
        return self._record(kind, "step_streak", step, epoch, lr, value)

    def observe_validation(self, step: int, epoch: int, lr: float, probs: np.ndarray) -> str | None:
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        kind, value = None, None
        if p.size:
            std = float(np.std(p)) if np.all(np.isfinite(p)) else math.nan
            one_class = bool(np.all(p >= 0.5) or np.all(p < 0.5))
            if not math.isfinite(std) or std < self.cfg.min_pred_std:
                kind, value = "constant_predictions", {"std": std, "positive_fraction": float(np.mean(p >= 0.5))}
            elif self.cfg.flag_single_class and one_class:
                kind, value = "constant_predictions", {"std": std, "positive_fraction": float(np.mean(p >= 0.5))}
        return self._record(kind, "val_streak", step, epoch, lr, value)

    def report(self, probs: np.ndarray | None = None) -> dict[str, Any]:
        return {
            "status": "collapsed" if self.collapsed else "ok",
            "reason": self.reason,
            "step": self.last["step"],
            "epoch": self.last["epoch"],
            "lr": self.last["lr"],
            "total_events": self.total_events,
            "events": list(self.events),
            "recent_losses": list(self.losses),
            "recent_grad_norms": list(self.grad_norms),
            "prediction_histogram": prediction_histogram(probs),
            "config": dataclasses.asdict(self.cfg),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "events": list(self.events), "losses": list(self.losses), "grad_norms": list(self.grad_norms),
            "step_streak": self.step_streak, "val_streak": self.val_streak, "total_events": self.total_events,
            "last": dict(self.last), "reason": self.reason,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.events.extend(state["events"])
        self.losses.extend(state["losses"])
        self.grad_norms.extend(state["grad_norms"])
        self.step_streak, self.val_streak = state["step_streak"], state["val_streak"]
        self.total_events, self.last, self.reason = state["total_events"], dict(state["last"]), state["reason"]
