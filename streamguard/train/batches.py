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
- ``ShardedBatchSampler(batches, grad_accum, rank, world_size)`` and ``shard_loader(loader, rank,
  world_size, grad_accum) -> DataLoader``: one rank's share of a training loader (see below).
- ``check_logits(model, logits, labels)``: ``ValueError`` unless the model kept the batch contract
  (one logit per sample, shape ``[B]``).
- ``predict(model, loader, device, amp=None, loss_fn=None) -> Predictions(labels, probs, loss)``:
  positive-class probabilities in loader order, and the sample-weighted mean loss with ``loss_fn``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

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


class ShardedBatchSampler(Sampler[list[int]]):
    """One rank's share of the batches a training loader yields in one process.

    Every rank iterates the wrapped batch sampler with the same seeded generators (uniform,
    weighted/balanced or length-grouped alike), so every rank sees the batches one process would and
    takes its share of each accumulation window: whole micro-batches when the window's
    ``grad_accum`` divides among the ranks (``grad_accum // world_size`` per rank and optimizer step,
    each of one process's per-step size), else a position-strided part of every micro-batch
    (``batch[rank::world_size]``). ``weights[i]`` scales the i-th local micro-batch's mean loss so
    that DDP's average over ranks is the gradient one process computes for the window (the shard's
    share of its micro-batch over the window's length); a rank left with nothing in a window gets a
    one-sample stand-in of weight 0, so all ranks run the same steps and collectives. The wrapped
    sampler draws exactly what it draws without sharding (and when), so the generator states the
    checkpoint keeps are the same for any number of ranks.
    """

    def __init__(self, batches: Any, grad_accum: int, rank: int, world_size: int):
        self.batches, self.accum, self.rank, self.world = batches, int(grad_accum), int(rank), int(world_size)
        self.whole = self.accum % self.world == 0
        self.grad_accum = self.accum // self.world if self.whole else self.accum  # per rank and optimizer step
        self.weights: list[float] = []  # of the epoch being iterated, one per local micro-batch
        self.sizes: list[int] = []  # real samples per local micro-batch (0 for a stand-in)

    # The generators the wrapped sampler draws from, where loader_generators looks for them.
    @property
    def generator(self) -> torch.Generator | None:
        return getattr(self.batches, "generator", None)

    @property
    def sampler(self) -> Any:
        return getattr(self.batches, "sampler", None)

    @property
    def batch_size(self) -> int | None:
        """This rank's per-step batch (the last micro-batch of an epoch may be smaller)."""
        size = getattr(self.batches, "batch_size", None)
        return None if size is None else (size if self.whole else math.ceil(size / self.world))

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def _window_steps(self, k: int) -> int:
        return math.ceil(k / self.world) if self.whole else k

    def __len__(self) -> int:
        n = len(self.batches)
        full, rest = divmod(n, self.accum)
        return full * self._window_steps(self.accum) + (self._window_steps(rest) if rest else 0)

    def __iter__(self) -> Iterator[list[int]]:
        # iter() now: a sampler that draws on iter() (before the DataLoader draws its base seed) still does.
        return self._shards(iter(self.batches))

    def _shards(self, inner: Iterator) -> Iterator[list[int]]:
        batches = [list(b) for b in inner]
        steps: list[list[int]] = []
        self.weights, self.sizes = [], []

        def add(indices: list[int], weight: float, stand_in: list[int]) -> None:
            steps.append(indices or stand_in[:1])
            self.weights.append(weight if indices else 0.0)
            self.sizes.append(len(indices))

        for start in range(0, len(batches), self.accum):
            window = batches[start:start + self.accum]
            k = len(window)
            if self.whole:
                mine = window[self.rank::self.world]
                for batch in mine:
                    add(batch, self.world / k, window[0])
                for _ in range(self._window_steps(k) - len(mine)):
                    add([], 0.0, window[0])
            else:
                for batch in window:
                    shard = batch[self.rank::self.world]
                    add(shard, self.world * len(shard) / (len(batch) * k), batch)
        yield from steps


def shard_loader(loader: DataLoader, rank: int, world_size: int, grad_accum: int) -> DataLoader:
    """``loader`` (same dataset, collate, workers and generator) yielding this rank's ``ShardedBatchSampler`` share."""
    sharded = ShardedBatchSampler(loader.batch_sampler, grad_accum, rank, world_size)
    kwargs: dict[str, Any] = {}
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers)
    return DataLoader(loader.dataset, batch_sampler=sharded, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn, generator=loader.generator, timeout=loader.timeout,
                      multiprocessing_context=loader.multiprocessing_context, **kwargs)


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
