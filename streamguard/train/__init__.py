"""Training: the engine and its safety rails.

Modules
-------
- ``engine``: ``train(model, loaders, loss_fn, cfg, out_dir, run_info, param_groups=None) -> RunResult``,
  ``LoopConfig``, ``RunInfo``, ``Trainer``, ``predict``, ``batch_to_device``, ``batch_labels``,
  ``make_loader``, ``load_best_weights``; ``checkpoint``: the checkpoint format, save / verify / resume,
  ``load_model_spec`` (a checkpoint alone rebuilds its model).
- ``optim``: ``ParamGroupSpec``, AdamW groups (no decay on biases, norms, embeddings), warmup + linear decay.
- ``amp``: autocast dtype and GradScaler; ``collapse``: collapse detection; ``metrics``: metrics,
  threshold tuning; ``losses``: BCE / focal; ``seeding``: seeds and RNG state capture;
  ``hardware``: device profiles and batch/accumulation; ``lr_finder`` / ``lr_cache``: LR range test
  and its persistent cache; ``outputs``: run-directory files; ``batches``: loaders and batches.

The engine trains any ``nn.Module`` whose ``forward(batch)`` returns one logit per sample.
"""
from __future__ import annotations

import importlib
from typing import Any

# Resolved on first use, so importing a light submodule (e.g. lr_cache for the CLI) stays cheap.
_EXPORTS = {
    "train": "engine", "Trainer": "engine", "LoopConfig": "engine", "RunInfo": "engine", "RunResult": "engine",
    "predict": "engine", "batch_to_device": "engine", "batch_labels": "engine", "make_loader": "engine",
    "load_best_weights": "engine", "load_model_spec": "checkpoint", "ParamGroupSpec": "optim",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
