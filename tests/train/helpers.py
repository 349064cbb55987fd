"""Tiny models and datasets for engine tests (real tensors, real training)."""
from __future__ import annotations

import hashlib
import pathlib

import torch
from torch import nn
from torch.utils.data import Dataset, WeightedRandomSampler

from streamguard.train.engine import LoopConfig, RunInfo, Trainer, make_loader
from streamguard.train.losses import make_loss
from streamguard.train.seeding import make_generator, seed_everything


class ToyDataset(Dataset):
    """Linearly separable-ish points: label = [x0 + 0.5 x1 + noise > 0]."""

    def __init__(self, n: int, dim: int = 8, seed: int = 0, noise: float = 0.3):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=gen)
        score = self.x[:, 0] + 0.5 * self.x[:, 1] + noise * torch.randn(n, generator=gen)
        self.y = (score > 0).float()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "labels": self.y[i]}


class MLP(nn.Module):
    def __init__(self, dim: int = 8, hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(batch["x"]).squeeze(-1)


def toy_loaders(seed: int = 0, n_train: int = 128, n_eval: int = 64, batch_size: int = 16, dim: int = 8,
                weighted_sampler: bool = False) -> dict:
    train = ToyDataset(n_train, dim, seed=1)
    sampler = None
    if weighted_sampler:  # a sampler with its own generator, as class-balanced sampling uses
        weights = 1.0 + train.y
        sampler = WeightedRandomSampler(weights, len(weights), replacement=True, generator=make_generator(seed + 17))
    return {
        "train": make_loader(train, batch_size, shuffle=sampler is None, sampler=sampler, seed=seed),
        "val": make_loader(ToyDataset(n_eval, dim, seed=2), batch_size, seed=seed),
        "test": make_loader(ToyDataset(n_eval, dim, seed=3), batch_size, seed=seed),
    }


def toy_trainer(out_dir, seed: int = 0, cfg: LoopConfig | None = None, dataset_hash: str = "hash-1",
                param_groups=None, model: nn.Module | None = None, extra: dict | None = None,
                log_dir=None, **loader_kw) -> Trainer:
    """A Trainer on the toy data; ``param_groups`` may be a function of the model."""
    seed_everything(seed)
    model = model or MLP()
    cfg = cfg or LoopConfig(epochs=3, lr=3e-2, patience=5)
    info = RunInfo("toy", seed, dataset_hash, {"model": {"hidden": 16}}, {"model.hidden": "params.yaml"}, extra or {},
                   log_dir=log_dir)
    groups = param_groups(model) if callable(param_groups) else param_groups
    return Trainer(model, toy_loaders(seed, **loader_kw), make_loss("bce"), cfg, out_dir, info, groups)


def run_toy(out_dir, **kw):
    return toy_trainer(out_dir, **kw).run()


def outcome(result) -> tuple[dict, list[dict]]:
    """metrics.json body and history of a run: all of it, since neither holds a wall-clock value."""
    return result.metrics, result.history


def file_digests(root) -> dict[str, str]:
    """md5 of every file under ``root`` (hidden ones too: a leftover temp file is a difference), by relative path."""
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
