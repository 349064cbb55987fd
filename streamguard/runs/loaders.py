"""Loaders and class weighting for one model kind's train/val/test datasets."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Subset, WeightedRandomSampler

from ..data.datasets import LengthGroupedBatchSampler
from ..train.engine import make_loader
from ..train.seeding import make_generator

SPLITS = {"train": "train", "val": "valid", "test": "test"}  # engine's name -> prepare's split name


def run_datasets(kind, data) -> dict:
    """The engine's train/val/test datasets for one model kind."""
    return {name: kind.dataset(data, split) for name, split in SPLITS.items()}


def dataset_labels(dataset) -> torch.Tensor:
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(dataset.indices)]
    return dataset.labels


def _lengths(dataset) -> torch.Tensor | None:
    if isinstance(dataset, Subset):
        inner = _lengths(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(dataset.indices)]
    return getattr(dataset, "lengths", None)


def class_weighting(section, labels: torch.Tensor) -> dict[str, Any]:
    """The effective class weighting of a model section, with a guard so the mechanisms never compound.

    A balanced sampler already shows both classes equally often, so it neutralizes the
    inverse-frequency loss weight; the vulnerable-class multiplier (an explicit recall preference)
    is applied on top of whichever remains. Sections without these keys get no weighting.
    """
    pos = float(labels.sum())
    neg = float(len(labels) - pos)
    inv_freq = neg / pos if pos > 0 and neg > 0 else 1.0
    balanced = bool(getattr(section, "balanced_sampler", False))
    use_inv = getattr(section, "loss_weighting", "none") == "inverse_frequency" and not balanced
    mult = float(getattr(section, "vuln_multiplier", 1.0))
    return {"balanced_sampler": balanced, "class_ratio": inv_freq, "inverse_frequency": inv_freq if use_inv else 1.0,
            "vuln_multiplier": mult, "pos_weight": (inv_freq if use_inv else 1.0) * mult,
            "neutralized_by_sampler": balanced and getattr(section, "loss_weighting", "none") == "inverse_frequency"}


def _balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=2).clamp(min=1).double()
    return (1.0 / counts)[labels]


def make_loaders(kind, datasets: dict, batch_size: int, seed: int, pad_id: int, balanced: bool,
                 num_workers: int = 0, pin_memory: bool = False) -> dict:
    """Loaders per split; token-bearing data get length-grouped batches with dynamic padding.

    Only the split named "train" is shuffled (and class-balanced when `balanced`); the others keep
    dataset order, so predictions line up with samples.
    """
    collate = kind.collate(pad_id)
    loaders = {}
    for split, ds in datasets.items():
        train = split == "train"
        weights = _balanced_weights(dataset_labels(ds)) if (train and balanced) else None
        lengths = _lengths(ds)
        common = dict(seed=seed, collate_fn=collate, num_workers=num_workers, pin_memory=pin_memory)
        if lengths is not None:
            sampler = LengthGroupedBatchSampler(lengths, batch_size, make_generator(seed + 17), weights=weights, shuffle=train)
            loaders[split] = make_loader(ds, None, batch_sampler=sampler, **common)
        elif weights is not None:
            sampler = WeightedRandomSampler(weights, len(weights), replacement=True, generator=make_generator(seed + 17))
            loaders[split] = make_loader(ds, batch_size, sampler=sampler, **common)
        else:
            loaders[split] = make_loader(ds, batch_size, shuffle=train, **common)
    return loaders
