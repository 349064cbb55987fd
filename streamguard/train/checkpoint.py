"""model_checkpoint.pt: a run's weights, its resumable state and the spec of its model, in one file.

Format (``CHECKPOINT_FORMAT``, loaded with ``weights_only=True``)
-----------------------------------------------------------------
``format``, ``epoch``, ``global_step``, ``best_model`` (the best weights; what inference loads),
``best_metric``, ``best_epoch``, ``bad_epochs``, ``history``, ``collapse`` (detector state),
``collapse_report``, ``stop_reason``, ``config`` (canonical JSON, see ``canonical_config``),
``dataset_hash``, ``model_spec`` (``RunInfo.extra["model_spec"]`` as plain JSON types, None when
the run has none), ``rng`` (python, numpy, torch, CUDA and every loader / sampler generator) and,
while the run is unfinished, ``model``, ``optimizer``, ``scheduler``, ``scaler`` and ``run_log``
(``started_at``, ``wall_time_s``, ``epoch_seconds``: the wall-clock accounting a resumed run
continues in its run_log.json). The best weights share the file with the resumable state so the
two never disagree; a finished run's file is rewritten without the resumable entries, so it holds
no wall-clock value and two identical runs write identical bytes.

Format 1 lacked ``model_spec``; formats 1 and 2 kept ``wall_time_s`` at the top level and a
``seconds`` value in every history row. Such checkpoints still resume (and are rewritten as the
current format). Any other format is refused with ``CheckpointError``.

Public API
----------
- ``CHECKPOINT_FILE``, ``CHECKPOINT_FORMAT``, ``READABLE_FORMATS``.
- ``load_best_weights(path) -> dict[str, Tensor]``; ``load_model_spec(path) -> dict`` (what
  ``build_model`` rebuilds the architecture from). Both raise ``CheckpointError`` naming the file.
- ``canonical_config(cfg, run_info, param_groups) -> str`` and ``model_spec_of(run_info)``: what a
  checkpoint must match to be resumed by a run.
- ``verify_checkpoint(path, ckpt, dataset_hash, config, model_spec)``: ``CheckpointError`` naming the
  field that stops ``ckpt`` from being resumed by this run.
- ``save_checkpoint(trainer, final=False)`` and ``resume(trainer) -> bool``: the ``Trainer``'s
  checkpoint writes (each unfinished epoch, and the slim final one) and its resume in ``start()``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..errors import CheckpointError
from ..io import load_torch, safe_jsonify, save_torch_atomic
from . import distributed
from .outputs import read_run_log
from .seeding import capture_rng_state, restore_rng_state

if TYPE_CHECKING:  # the engine imports this module; annotations only
    from .engine import LoopConfig, Trainer
    from .optim import ParamGroupSpec
    from .outputs import RunInfo

__all__ = [
    "CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "READABLE_FORMATS", "load_best_weights", "load_model_spec",
    "canonical_config", "model_spec_of", "verify_checkpoint", "save_checkpoint", "resume",
]

log = logging.getLogger("streamguard.train.checkpoint")

CHECKPOINT_FILE = "model_checkpoint.pt"
CHECKPOINT_FORMAT = 3
READABLE_FORMATS = (1, 2, 3)  # 1: before model_spec; 1 and 2: wall times among the results
# Loop settings that do not change what a run computes; a resumed run may differ in them.
NON_RESULT_FIELDS = ("progress",)


def load_best_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The best model state dict from a run's model_checkpoint.pt."""
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("best_model") is None:
        raise CheckpointError(f"{path}: field 'best_model' is missing; the run never finished an epoch")
    return ckpt["best_model"]


def load_model_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The model spec a run was trained with, as stored in its model_checkpoint.pt."""
    ckpt = load_torch(path)  # names the file when it is missing or cannot be read
    spec = ckpt.get("model_spec") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: field 'model_spec' is missing (written before checkpoints carried it, "
                              "or by a run without one); re-run training")
    return spec


def model_spec_of(run_info: RunInfo) -> dict[str, Any] | None:
    """``run_info.extra["model_spec"]`` in plain JSON types, so it loads with weights_only=True."""
    spec = run_info.extra.get("model_spec")
    return None if spec is None else safe_jsonify(spec, "model_spec")


def canonical_config(cfg: LoopConfig, run_info: RunInfo, param_groups: Sequence[ParamGroupSpec] | None) -> str:
    train_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NON_RESULT_FIELDS}
    groups = [{"name": s.name, "lr_mult": s.lr_mult, "weight_decay": s.weight_decay} for s in param_groups or []]
    body = {"model": run_info.model_name, "seed": run_info.seed, "train": train_cfg, "param_groups": groups,
            "run": run_info.config}
    return json.dumps(safe_jsonify(body), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _diff_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k)]
    return [] if old == new else [prefix or "<root>"]


def verify_checkpoint(path: str | os.PathLike, ckpt: Any, dataset_hash: str | None, config: str,
                      model_spec: dict[str, Any] | None) -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"{path}: field 'format' is not one of {READABLE_FORMATS}; delete it to start over")
    if ckpt.get("dataset_hash") != dataset_hash:
        raise CheckpointError(
            f"{path}: field 'dataset_hash' is {ckpt.get('dataset_hash')!r} but this run's data is "
            f"{dataset_hash!r}; use a new output directory or delete the checkpoint")
    if ckpt.get("config") != config:
        old, new = json.loads(ckpt.get("config") or "{}"), json.loads(config)
        diff = sorted(_diff_keys(old, new))
        raise CheckpointError(
            f"{path}: field 'config' differs from this run's config (at {', '.join(diff[:5]) or '?'}); "
            "use a new output directory or delete the checkpoint")
    # Format 1 has no spec to compare; otherwise weights of another architecture must not be loaded.
    if "model_spec" in ckpt and ckpt["model_spec"] != model_spec:
        diff = sorted(_diff_keys(ckpt["model_spec"], model_spec))
        raise CheckpointError(
            f"{path}: field 'model_spec' differs from this run's model (at {', '.join(diff[:5]) or '?'}); "
            "use a new output directory or delete the checkpoint")


def _canonical(value: Any) -> Any:
    """``value`` with every string interned. Pickle writes an object it has seen before as a back-reference,
    so without this the bytes would depend on which equal strings happen to be one object (a resumed run's
    come from unpickling, a fresh run's from literals) and a resumed run's finished file would differ."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return type(value)((_canonical(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_canonical(v) for v in value)
    return value


def _checkpoint_state(trainer: Trainer, final: bool = False) -> dict[str, Any]:
    t = trainer
    state: dict[str, Any] = _canonical({
        "format": CHECKPOINT_FORMAT, "epoch": t.epoch, "global_step": t.global_step,
        "best_model": t.best_state, "best_metric": t.best_metric, "best_epoch": t.best_epoch,
        "bad_epochs": t.bad_epochs, "history": t.history, "collapse": t.collapse.state_dict(),
        "collapse_report": t.collapse_report, "stop_reason": t.stop_reason,
        "config": t.config_json, "dataset_hash": t.run_info.dataset_hash, "model_spec": t.model_spec,
        "rng": capture_rng_state(t.generators),
    })
    if not final:  # left as they are (a module state dict carries _metadata); a final file has none of them
        state.update(model=t.model.state_dict(), optimizer=t.optimizer.state_dict(),
                     scheduler=t.scheduler.state_dict(), scaler=t.amp.state_dict(),
                     run_log={"started_at": t.started_at, "wall_time_s": t.wall_time(),
                              "epoch_seconds": list(t.epoch_seconds)})
    return state


def _earlier_timing(ckpt: dict[str, Any], log_path: os.PathLike) -> dict[str, Any]:
    """Wall-clock accounting of the sessions before this one."""
    if isinstance(ckpt.get("run_log"), dict):
        return ckpt["run_log"]
    if "wall_time_s" in ckpt:  # formats 1 and 2
        return {"wall_time_s": ckpt["wall_time_s"], "epoch_seconds": [row.get("seconds") for row in ckpt["history"]]}
    # A finished checkpoint carries none; the run log it left (if any) does.
    return read_run_log(log_path) or {}


def _restore_timing(t: Trainer, timing: dict[str, Any]) -> None:
    wall, seconds, started = timing.get("wall_time_s"), timing.get("epoch_seconds"), timing.get("started_at")
    t.wall_time_prev = float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else 0.0
    known = isinstance(seconds, list) and len(seconds) == len(t.history)
    t.epoch_seconds = list(seconds) if known else [None] * len(t.history)
    if isinstance(started, str):
        t.started_at = started


def save_checkpoint(trainer: Trainer, final: bool = False) -> None:
    save_torch_atomic(trainer.checkpoint_path, _checkpoint_state(trainer, final))


def _read_if_present(path: os.PathLike) -> dict[str, Any] | None:
    return load_torch(path) if os.path.exists(path) else None


def resume(trainer: Trainer) -> bool:
    """Load the checkpoint in the trainer's out_dir if there is one; True when a run was resumed."""
    t, path = trainer, trainer.checkpoint_path
    # Read on rank 0 (the one that writes it) and shared, so every rank of a torchrun resumes the same state.
    ckpt = distributed.on_main(_read_if_present, path)
    if ckpt is None:
        return False
    verify_checkpoint(path, ckpt, t.run_info.dataset_hash, t.config_json, t.model_spec)
    t.epoch, t.global_step = ckpt["epoch"], ckpt["global_step"]
    t.best_state, t.best_metric = ckpt["best_model"], ckpt["best_metric"]
    t.best_epoch, t.bad_epochs = ckpt["best_epoch"], ckpt["bad_epochs"]
    # Rows of formats 1 and 2 hold the epoch's wall time, which the outputs no longer carry.
    t.history = [{k: v for k, v in row.items() if k != "seconds"} for row in ckpt["history"]]
    t.collapse.load_state_dict(ckpt["collapse"])
    t.collapse_report = ckpt["collapse_report"]
    _restore_timing(t, _earlier_timing(ckpt, t.log_path))
    t.stop_reason = ckpt["stop_reason"]
    if t.stop_reason is None:
        t.model.load_state_dict(ckpt["model"])
        t.optimizer.load_state_dict(ckpt["optimizer"])
        t.scheduler.load_state_dict(ckpt["scheduler"])
        t.amp.load_state_dict(ckpt["scaler"])
    restore_rng_state(ckpt["rng"], t.generators)
    t.resumed_from = t.epoch
    log.info("resumed %s from %s at epoch %d%s", t.run_info.model_name, path, t.epoch,
             f" (finished: {t.stop_reason})" if t.stop_reason else "")
    return True
