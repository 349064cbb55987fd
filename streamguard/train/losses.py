"""Loss functions over one logit per sample.

Public API
----------
Every loss is called as ``loss_fn(logits [B] float, labels [B] float in {0,1}) -> scalar mean``.

- ``make_loss(name="bce", pos_weight=None, focal_gamma=2.0, focal_alpha=None) -> nn.Module``:
  ``"bce"`` (BCE-with-logits, optional positive-class weight) or ``"focal"``.
- ``FocalLoss(gamma, alpha)``: Lin et al. (2017) focal loss on logits, computed in a numerically
  stable way from BCE-with-logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

LOSS_NAMES = ("bce", "focal")


class BCEWithLogits(nn.Module):
    """Mean BCE-with-logits; ``pos_weight`` scales the positive class (None: unweighted)."""

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pw = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=pw)


class FocalLoss(nn.Module):
    """Focal loss: BCE scaled by (1 - p_t)^gamma, optionally class-balanced by alpha (weight of positives)."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal loss gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"focal loss alpha must be in [0, 1], got {alpha}")
        self.gamma, self.alpha = float(gamma), alpha

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        p_t = torch.exp(-bce)  # probability of the true class, stable for large |logits|
        loss = (1.0 - p_t).pow(self.gamma) * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * labels + (1.0 - self.alpha) * (1.0 - labels))
        return loss.mean()


def make_loss(name: str = "bce", pos_weight: float | None = None, focal_gamma: float = 2.0,
              focal_alpha: float | None = None) -> nn.Module:
    if name == "bce":
        return BCEWithLogits(pos_weight)
    if name == "focal":
        return FocalLoss(focal_gamma, focal_alpha)
    raise ConfigError(f"unknown loss '{name}'; expected one of {', '.join(LOSS_NAMES)}")
