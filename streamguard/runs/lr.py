"""The lr_find stage's work: an LR range test per kind through the persistent cache, and reading its result."""
from __future__ import annotations

import dataclasses
import logging
import pathlib

import numpy as np

from ..config import Config
from ..errors import StreamGuardError
from ..io import read_json, write_json_atomic
from ..kinds import get_kind
from ..train.distributed import on_main
from ..train.lr_cache import LRCache
from ..train.lr_finder import find_lr, save_lr_outputs
from ..train.seeding import seed_everything
from .pretrain import pretrained_trunk
from .loaders import class_weighting, dataset_labels, make_loaders
from .setup import hardware_for

log = logging.getLogger("streamguard.runs")

RESULT_FILE = "recommended_lr.json"


CACHE_LOG = "lr_find_{kind}.json"


def lr_find(kind_name: str, cfg: Config, data, ds_hash: str, out_dir: pathlib.Path,
            log_dir: pathlib.Path | None = None, pretrain_dir: pathlib.Path | None = None) -> dict:
    """LR range test through the persistent cache; writes the curve and recommended LR into out_dir.

    A kind that starts from the pretrain stage's trunk (`pretrain_dir`) is tested from it too: the
    curve of the weights the runs will train, with the trunk's sha256 in the cache key.

    Whether the cache hit goes to `log_dir` (default: out_dir), not into the outputs: a hit and a miss
    give the same result files, so the DVC out hashes the same either way. Under torchrun the test runs
    on rank 0 alone (one curve, one cache entry) and every rank returns its result.
    """
    return on_main(_lr_find, kind_name, cfg, data, ds_hash, out_dir, log_dir, pretrain_dir)


def _lr_find(kind_name: str, cfg: Config, data, ds_hash: str, out_dir: pathlib.Path,
             log_dir: pathlib.Path | None, pretrain_dir: pathlib.Path | None) -> dict:
    kind = get_kind(kind_name)
    sec = getattr(cfg, kind_name)
    spec = kind.spec(cfg, data)
    trunk = pretrained_trunk(kind, spec, pretrain_dir)
    hw = hardware_for(kind_name, cfg)
    lf = cfg.lr_find
    # Everything that shapes the curve is in the key; what only matters later (epochs, patience,
    # warmup) is not, so changing those keeps the cached result.
    shaping = {k: v for k, v in dataclasses.asdict(sec).items() if k not in kind.not_lr_shaping}
    settings = {"steps": lf.steps, "start_lr": lf.start_lr, "end_lr": lf.end_lr, "batch_size": hw.batch_size,
                "grad_accum": hw.grad_accum, "amp": hw.amp, "section": shaping}
    if trunk is not None:
        settings["init"] = trunk.sha256
    cache = LRCache(lf.cache_dir, ttl_hours=lf.ttl_hours)

    def compute():
        seed_everything(cfg.seed)
        model = kind.build(spec)
        if trunk is not None:
            kind.load_pretrained(model, trunk.state)
        train_ds = kind.dataset(data, "train")
        weighting = class_weighting(sec, dataset_labels(train_ds))
        loaders = make_loaders(kind, {"train": train_ds}, hw.batch_size, cfg.seed, data.pad_id, weighting["balanced_sampler"])
        return find_lr(model, loaders["train"], kind.loss(sec, weighting), (sec.lr_min, sec.lr_max),
                       amp=hw.amp, weight_decay=sec.weight_decay, max_grad_norm=sec.max_grad_norm,
                       grad_accum=hw.grad_accum, num_steps=lf.steps, start_lr=lf.start_lr, end_lr=lf.end_lr)

    if lf.enabled:
        result, outcome = cache.get_or_compute(kind_name, spec, ds_hash, cfg.seed, compute, finder_settings=settings)
        save_lr_outputs(result, out_dir)
        write_json_atomic(pathlib.Path(log_dir or out_dir) / CACHE_LOG.format(kind=kind_name),
                          {"model": kind_name, "cache": {"hit": outcome.hit, "key": outcome.key, "reason": outcome.reason}})
        log.info("lr_find %s: lr=%.3g (%s), cache %s", kind_name, result.lr, result.confidence, "hit" if outcome.hit else "miss")
        return {"lr": result.lr, "confidence": result.confidence, "cache_hit": outcome.hit}
    lr = float(np.sqrt(sec.lr_min * sec.lr_max))  # geometric middle of the configured range
    write_json_atomic(out_dir / RESULT_FILE, {"lr": lr, "confidence": "disabled", "lr_range": [sec.lr_min, sec.lr_max]})
    return {"lr": lr, "confidence": "disabled", "cache_hit": None}


def recommended_lr(kind_name: str, lr_dir: pathlib.Path) -> float:
    path = pathlib.Path(lr_dir) / kind_name / RESULT_FILE
    if not path.exists():
        raise StreamGuardError(f"{path}: not found; run the lr_find stage first (dvc repro lr_find)")
    try:
        return float(read_json(path)["lr"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StreamGuardError(f"{path}: field 'lr' unreadable ({exc}); re-run the lr_find stage") from None
