"""Seeding, RNG capture through a weights_only checkpoint, seeded loader workers."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset

from streamguard.io import load_torch, save_torch_atomic
from streamguard.train.engine import make_loader
from streamguard.train.seeding import capture_rng_state, make_generator, restore_rng_state, seed_everything


def _draw(gen):
    return (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen)))


def test_seed_everything_repeats():
    seed_everything(123)
    a = _draw(make_generator(1))
    seed_everything(123)
    b = _draw(make_generator(1))
    seed_everything(124)
    c = _draw(make_generator(2))
    assert a == b and a != c


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    seed_everything(7)
    gen = make_generator(99)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    np.random.standard_normal()  # and in numpy's
    state = capture_rng_state([gen])
    expected = (_draw(gen), random.gauss(0, 1), float(np.random.standard_normal()))
    save_torch_atomic(tmp_path / "rng.pt", {"rng": state})
    seed_everything(0)
    torch.rand(5, generator=gen)  # move everything somewhere else
    restore_rng_state(load_torch(tmp_path / "rng.pt")["rng"], [gen])
    assert (_draw(gen), random.gauss(0, 1), float(np.random.standard_normal())) == expected


class NoisyDataset(Dataset):
    """Uses numpy and python randomness per item, as augmentation would inside workers."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor([i, np.random.rand(), random.random()], dtype=torch.float64)


def test_worker_randomness_is_seeded():
    def collect(seed):
        return torch.cat(list(make_loader(NoisyDataset(), 4, shuffle=True, seed=seed, num_workers=2))).tolist()

    a, b, c = collect(5), collect(5), collect(6)
    assert a == b and a != c
    worker_values = [row[1] for row in a]
    assert len(set(worker_values)) == len(worker_values)  # workers do not share one numpy stream
