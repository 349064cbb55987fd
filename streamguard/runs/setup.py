"""Per-run settings from the config: run directory, hardware, the engine's loop config, run metadata."""
from __future__ import annotations

import dataclasses
import pathlib

from ..config import Config
from ..kinds import get_kind, kind_names
from ..train.collapse import CollapseConfig
from ..train.engine import LoopConfig, RunInfo
from ..train.hardware import HardwareConfig, resolve_hardware

# How a run is launched, not what it computes: kept out of its identity (metadata config and the
# checkpoint's), so a checkpoint resumes under another launcher; the metadata's `distributed` says how it ran.
LAUNCH_KEYS = ("launcher", "distributed", "dist_timeout_s")


def run_dir(outputs: str | pathlib.Path, kind: str, seed: int) -> pathlib.Path:
    return pathlib.Path(outputs) / get_kind(kind).output_dir / f"seed_{seed}"


def hardware_for(kind: str, cfg: Config) -> HardwareConfig:
    sec = getattr(cfg, kind)
    return resolve_hardware(kind, requested_batch=sec.batch_size * sec.grad_accum,
                            profile_values={"amp": cfg.train.amp, "num_workers": cfg.train.num_workers},
                            profile_sources={"amp": "params.yaml:train.amp", "num_workers": "params.yaml:train.num_workers"},
                            override_path=cfg.train.hardware_override, batch_limits=get_kind(kind).batch_limits,
                            model_sections=kind_names())


def loop_config(kind: str, cfg: Config, lr: float, hw: HardwareConfig, epochs: int | None = None) -> LoopConfig:
    sec = getattr(cfg, kind)
    return LoopConfig(
        epochs=epochs or sec.epochs, lr=lr, weight_decay=sec.weight_decay, warmup_ratio=sec.warmup_ratio,
        grad_accum=hw.grad_accum, max_grad_norm=sec.max_grad_norm, patience=sec.patience,
        monitor=cfg.train.select_metric, amp=hw.amp, threshold_policy=cfg.train.threshold_policy,
        target_fpr=cfg.train.target_fpr,
        collapse=dataclasses.replace(CollapseConfig(), patience=cfg.train.collapse_patience,
                                     explode_grad_norm=cfg.train.explode_grad_norm))


def run_info(kind: str, cfg: Config, seed: int, ds_hash: str, spec: dict, hw: HardwareConfig, extra: dict,
             log_dir: str | pathlib.Path | None = None, init_sha256: str | None = None) -> RunInfo:
    """Metadata of a run: the sections it read (its own, its backbones', `train`) with their sources.

    `log_dir` receives the run's varying facts (wall times, git commit); None keeps them in the run directory.
    `init_sha256` (the pretrained trunk a run starts from) joins the config, so a checkpoint that
    started from other weights is not resumed.
    """
    config, sources = {}, {}
    for name in [kind, *get_kind(kind).backbones, "train"]:
        values, srcs = cfg.section_with_sources(name)
        if name == "train":
            values = {k: v for k, v in values.items() if k not in LAUNCH_KEYS}
            srcs = {k: v for k, v in srcs.items() if k not in LAUNCH_KEYS}
        config[name] = values
        sources.update({f"{name}.{k}": v for k, v in srcs.items()})
    config["hardware"] = hw.to_dict()
    sources.update({f"hardware.{k}": v for k, v in hw.sources.items()})
    config["profile"] = cfg.profile
    if init_sha256 is not None:
        config["init"] = {"pretrain_sha256": init_sha256}
    return RunInfo(model_name=get_kind(kind).output_dir, seed=seed, dataset_hash=ds_hash, config=config,
                   config_sources=sources, extra={"model_spec": spec, **extra}, log_dir=log_dir)
