"""Seeding and RNG state capture for reproducible runs.

Public API
----------
- ``seed_everything(seed, deterministic=True)``: seed python, numpy and torch (all devices) and, by
  default, ask torch for deterministic kernels (warn-only, so an op without a deterministic variant
  does not stop a run).
- ``make_generator(seed) -> torch.Generator``: the generator a DataLoader shuffles with.
- ``seed_worker(worker_id)``: DataLoader ``worker_init_fn``; derives python/numpy seeds in each worker
  from the torch seed the loader assigned to it.
- ``capture_rng_state(generators=()) -> dict`` / ``restore_rng_state(state, generators=())``:
  python, numpy, torch (CPU and CUDA) and the given ``torch.Generator`` states (DataLoader and
  sampler generators) as tensors and plain types, so a checkpoint holding them loads with
  ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import random
from typing import Any, Sequence

import numpy as np
import torch

# cuBLAS needs this for deterministic matmuls on CUDA; setting it has no effect on CPU.
_CUBLAS_WORKSPACE = ":4096:8"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator for DataLoader shuffling and worker seeds."""
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def seed_worker(worker_id: int) -> None:  # noqa: ARG001 - DataLoader calling convention
    """Seed python and numpy inside a DataLoader worker from its torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def capture_rng_state(generators: Sequence[torch.Generator] = ()) -> dict[str, Any]:
    """Every RNG state as tensors / plain python values (weights_only-safe)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_internal, dtype=torch.int64),
            "gauss": py_gauss,
        },
        "numpy": {
            "bit_generator": str(np_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [g.get_state() for g in generators],
    }
    return state


def restore_rng_state(state: dict[str, Any], generators: Sequence[torch.Generator] = ()) -> None:
    """Inverse of ``capture_rng_state``."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npst["bit_generator"],
            "state": {"key": npst["key"].detach().cpu().numpy().astype(np.uint32), "pos": npst["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", [])
    if len(saved) != len(generators):
        raise ValueError(f"RNG state holds {len(saved)} generator states, {len(generators)} generators given")
    for gen, gen_state in zip(generators, saved):
        gen.set_state(gen_state)
