"""Mixed precision: which autocast dtype to use and the GradScaler around the optimizer step.

Public API
----------
- ``AMP_MODES = ("auto", "bf16", "fp16", "fp32", "off")`` (``off`` is ``fp32``).
- ``resolve_amp(device, requested="auto") -> AmpSettings``: CUDA ``auto`` uses bf16 where the GPU
  supports it, else fp16 with a GradScaler; CPU and MPS run full precision unless bf16 is asked for
  (fp16 on CPU/MPS falls back to fp32 with a warning: it is slow there and needs no scaler).
- ``Amp(settings)``: ``autocast()`` context, ``backward(loss)``, ``unscale_(opt)``, ``step(opt)``,
  ``update() -> skipped: bool``, ``state_dict()`` / ``load_state_dict()`` (goes into checkpoints).

The engine calls them in the order scale -> backward -> unscale_ -> clip -> step -> update.
With the scaler disabled every call degrades to the plain full-precision equivalent.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging

import torch

from ..errors import ConfigError

log = logging.getLogger("streamguard.train.amp")

AMP_MODES = ("auto", "bf16", "fp16", "fp32", "off")


@dataclasses.dataclass(frozen=True)
class AmpSettings:
    device_type: str  # "cuda", "cpu" or "mps"
    dtype: torch.dtype | None  # None: full precision, no autocast
    use_scaler: bool
    reason: str  # why this setting, recorded in training_metadata.json

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def _cuda_bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_amp(device: torch.device | str, requested: str = "auto") -> AmpSettings:
    device_type = torch.device(device).type
    if requested not in AMP_MODES:
        raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got '{requested}'")
    if requested in ("fp32", "off"):
        return AmpSettings(device_type, None, False, f"requested {requested}")
    if device_type == "cuda":
        bf16 = _cuda_bf16_supported()
        if requested == "auto":
            if bf16:
                return AmpSettings("cuda", torch.bfloat16, False, "auto: GPU supports bf16")
            return AmpSettings("cuda", torch.float16, True, "auto: GPU lacks bf16, fp16 with GradScaler")
        if requested == "bf16" and not bf16:
            log.warning("bf16 requested but this GPU does not support it; using fp16 with GradScaler")
            return AmpSettings("cuda", torch.float16, True, "bf16 unsupported on this GPU, fp16 fallback")
        dtype = torch.bfloat16 if requested == "bf16" else torch.float16
        return AmpSettings("cuda", dtype, dtype == torch.float16, f"requested {requested}")
    # CPU / MPS: full precision unless bf16 is asked for explicitly.
    if requested == "bf16":
        return AmpSettings(device_type, torch.bfloat16, False, "requested bf16")
    if requested == "fp16":
        log.warning("fp16 requested on %s; running full precision instead", device_type)
        return AmpSettings(device_type, None, False, f"fp16 unsupported on {device_type}, fp32 fallback")
    return AmpSettings(device_type, None, False, f"auto: full precision on {device_type}")


class Amp:
    """Autocast + GradScaler for one run."""

    def __init__(self, settings: AmpSettings):
        self.settings = settings
        self.scaler = torch.amp.GradScaler(settings.device_type if settings.device_type == "cuda" else "cpu",
                                           enabled=settings.use_scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.settings.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.settings.device_type, dtype=self.settings.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)  # skips the step when unscale_ found inf/NaN gradients

    def step_if_finite(self, optimizer: torch.optim.Optimizer, finite: bool) -> bool:
        """Take the optimizer step unless it would apply inf/NaN; True when it was skipped.

        With the scaler on, the scaler decides (and lowers its scale); without it (fp32, bf16) a
        disabled scaler would step blindly, so `finite` (loss and gradient norm) decides.
        """
        if self.scaler.is_enabled():
            self.step(optimizer)
            return self.update()
        if finite:
            optimizer.step()
        return not finite

    def update(self) -> bool:
        """Update the loss scale; True when the scaler skipped this step (the scale went down)."""
        if not self.scaler.is_enabled():
            return False
        before = self.scaler.get_scale()
        self.scaler.update()
        return self.scaler.get_scale() < before

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler.load_state_dict(state)
