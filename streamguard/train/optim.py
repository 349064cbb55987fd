"""AdamW parameter groups with LR multipliers, and the warmup + linear-decay schedule.

Public API
----------
- ``ParamGroupSpec(name, params, lr_mult=1.0, weight_decay=None)``: ``params`` is a module or an
  iterable of parameters. The fusion model passes e.g. ``[ParamGroupSpec("transformer", enc, 0.1),
  ParamGroupSpec("gnn", gnn, 0.5), ParamGroupSpec("fusion", head, 1.0)]``. Trainable parameters
  that no spec names go into a group ``"other"`` with multiplier 1.0.
- ``build_optimizer(model, lr, weight_decay, specs=None, decay_embeddings=False, betas, eps)
  -> (AdamW, dict[name, list[Parameter]])``: each spec becomes two AdamW groups (decayed and not).
  No weight decay on biases and other 1-D parameters (norm weights), nor on ``nn.Embedding``
  weights unless ``decay_embeddings`` (embeddings see sparse updates per batch, so decay would
  shrink rare-token rows toward zero between their updates).
- ``warmup_linear(total_steps, warmup_ratio) -> Callable[[int], float]`` and
  ``build_scheduler(optimizer, total_steps, warmup_ratio) -> LambdaLR``: linear warmup over
  ``ceil(warmup_ratio * total_steps)`` optimizer steps, then linear decay to 0; stepped once per
  optimizer step.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ParamGroupSpec:
    name: str
    params: nn.Module | Iterable[nn.Parameter]
    lr_mult: float = 1.0
    weight_decay: float | None = None  # None: the run's weight_decay

    def parameters(self) -> list[nn.Parameter]:
        if isinstance(self.params, nn.Module):
            return list(self.params.parameters())
        return list(self.params)


def _no_decay_ids(model: nn.Module, decay_embeddings: bool) -> set[int]:
    ids = {id(p) for p in model.parameters() if p.ndim <= 1}
    if not decay_embeddings:
        for module in model.modules():
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                ids.update(id(p) for p in module.parameters())
    return ids


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, specs: Sequence[ParamGroupSpec] | None = None,
                    decay_embeddings: bool = False, betas: tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8) -> tuple[torch.optim.AdamW, dict[str, list[nn.Parameter]]]:
    specs = list(specs or [])
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"parameter group names must be unique, got {names}")
    seen: dict[int, str] = {}
    by_name: dict[str, list[nn.Parameter]] = {}
    for spec in specs:
        if spec.lr_mult <= 0:
            raise ConfigError(f"parameter group '{spec.name}': lr_mult must be > 0, got {spec.lr_mult}")
        params = []
        for p in spec.parameters():
            if id(p) in seen:
                if seen[id(p)] == spec.name:
                    continue  # shared (tied) parameter within one group
                raise ConfigError(f"a parameter is in both groups '{seen[id(p)]}' and '{spec.name}'")
            seen[id(p)] = spec.name
            if p.requires_grad:
                params.append(p)
        by_name[spec.name] = params
    rest = [p for p in dict.fromkeys(model.parameters()) if p.requires_grad and id(p) not in seen]
    if rest:
        if "other" in by_name:
            raise ConfigError("parameter group name 'other' is reserved for parameters no group names")
        specs.append(ParamGroupSpec("other", rest, 1.0))
        by_name["other"] = rest
    if not any(by_name.values()):
        raise ConfigError(f"model {type(model).__name__} has no trainable parameters")

    no_decay = _no_decay_ids(model, decay_embeddings)
    groups = []
    for spec in specs:
        wd = weight_decay if spec.weight_decay is None else spec.weight_decay
        params = by_name[spec.name]
        decay = [p for p in params if id(p) not in no_decay]
        plain = [p for p in params if id(p) in no_decay]
        for suffix, plist, group_wd in (("", decay, wd), (".no_decay", plain, 0.0)):
            if plist:
                groups.append({"params": plist, "lr": lr * spec.lr_mult, "weight_decay": group_wd,
                               "name": spec.name + suffix, "lr_mult": spec.lr_mult})
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    return optimizer, {k: v for k, v in by_name.items() if v}


def warmup_linear(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    total = max(1, int(total_steps))
    warmup = min(total, math.ceil(warmup_ratio * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)  # never exactly 0: the first step already learns
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear(total_steps, warmup_ratio))


def scheduler_step(scheduler: torch.optim.lr_scheduler.LRScheduler, step_skipped: bool) -> None:
    """Advance the schedule by one optimizer step, also a skipped (non-finite) one."""
    if not step_skipped:
        scheduler.step()
        return
    with warnings.catch_warnings():  # a skipped first step makes LambdaLR warn about the call order
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
        scheduler.step()
