"""Batches, data loaders and devices: the one place samplers and loaders are created, and one
evaluation pass of a model over a loader.

Public API (re-exported by ``streamguard.train.engine``)
---------------------------------------------------------
- ``resolve_device(name="auto") -> torch.device``: ``auto`` picks CUDA, then MPS, then CPU; a CUDA
  device asked for on a machine without one is a ``ConfigError``.
- ``batch_to_device(batch, device)``: tensors, PyG ``Batch``/``Data`` (anything with ``.to``), and
  dicts / lists / tuples of them (fusion batches nest both) moved to ``device``.
- ``batch_labels(batch) -> Tensor [B]``: ``batch["labels"]`` for dicts (searched in nested values
  when absent at the top level), ``batch.y`` for PyG batches.
- ``make_loader(dataset, batch_size, shuffle, *, seed, sampler=None, batch_sampler=None,
  collate_fn=None, num_workers=0, pin_memory=False, drop_last=False) -> DataLoader``: seeded
  generator and ``seed_worker``; PyG datasets get PyG's collater automatically.
- ``loader_generators(loader) -> list[torch.Generator]``: every distinct generator a loader and its
  (batch) sampler draw from; the engine checkpoints their states. Custom samplers should take a
  ``generator`` attribute so their randomness is captured too.
- ``set_loader_epoch(loader, epoch)``: calls ``set_epoch`` on samplers that have it (distributed).
- ``check_logits(model, logits, labels)``: ``ValueError`` unless the model kept the batch contract
  (one logit per sample, shape ``[B]``).
- ``predict(model, loader, device, amp=None, loss_fn=None) -> Predictions(labels, probs, loss)``:
  positive-class probabilities in loader order, and the sample-weighted mean loss with ``loss_fn``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError
from .seeding import make_generator, seed_worker

if TYPE_CHECKING:
    from .amp import Amp


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


def batch_to_device(batch: Any, device: torch.device | str) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to):  # PyG Batch / Data and similar containers
        return batch.to(device, non_blocking=True)
    return batch


def _find_labels(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, Mapping):
        if "labels" in batch:
            return batch["labels"]
        for value in batch.values():
            found = _find_labels(value)
            if found is not None:
                return found
        return None
    y = getattr(batch, "y", None)
    return y if isinstance(y, torch.Tensor) else None


def batch_labels(batch: Any) -> torch.Tensor:
    labels = _find_labels(batch)
    if labels is None:
        raise KeyError(f"batch of type {type(batch).__name__} has no 'labels' key and no '.y' attribute")
    return labels.reshape(-1)


def _pyg_collater(dataset: Dataset) -> Callable | None:
    """PyG's collater when the dataset holds PyG data (PyG is only consulted when already imported)."""
    if "torch_geometric" not in sys.modules or len(dataset) == 0:  # type: ignore[arg-type]
        return None
    from torch_geometric.data.data import BaseData
    from torch_geometric.loader.dataloader import Collater

    return Collater(dataset) if isinstance(dataset[0], BaseData) else None


def make_loader(dataset: Dataset, batch_size: int | None, shuffle: bool = False, *, seed: int,
                sampler: Sampler | None = None, batch_sampler: Sampler | None = None,
                collate_fn: Callable | None = None, num_workers: int = 0, pin_memory: bool = False,
                drop_last: bool = False) -> DataLoader:
    if collate_fn is None:
        collate_fn = _pyg_collater(dataset)
    kwargs: dict[str, Any] = {}
    if batch_sampler is not None:
        kwargs["batch_sampler"] = batch_sampler
    else:
        kwargs.update(batch_size=batch_size, shuffle=shuffle if sampler is None else False, sampler=sampler,
                      drop_last=drop_last)
    if num_workers > 0:
        kwargs["persistent_workers"] = False
    return DataLoader(dataset, collate_fn=collate_fn, num_workers=num_workers, pin_memory=pin_memory,
                      worker_init_fn=seed_worker, generator=make_generator(seed), **kwargs)


def loader_generators(loader: DataLoader) -> list[torch.Generator]:
    found: list[torch.Generator] = []
    candidates = [loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                  getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    for obj in candidates:
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def check_logits(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.dim() != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{type(model).__name__}(batch) must return one logit per sample, shape "
                         f"[{labels.shape[0]}], got {list(logits.shape)}")


@dataclasses.dataclass
class Predictions:
    labels: np.ndarray  # int64 [N]
    probs: np.ndarray  # float64 [N]
    loss: float | None  # sample-weighted mean loss, None without loss_fn


def predict(model: nn.Module, loader, device: torch.device | str, amp: Amp | None = None,
            loss_fn: Callable | None = None) -> Predictions:
    """Positive-class probabilities (and mean loss) over a loader, in loader order."""
    # metrics imports scikit-learn; lr_cache (and so the CLI) imports this module and never predicts.
    from .metrics import reduce_predictions

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
            check_logits(model, logits, labels)
            if loss_fn is not None:
                loss_sum += loss_fn(logits, labels.float()).double() * labels.shape[0]
            chunks.append((labels, torch.sigmoid(logits)))
    y, p = reduce_predictions(chunks)
    loss = float(loss_sum.item()) / max(1, y.size) if loss_fn is not None else None
    return Predictions(y, p, loss)
