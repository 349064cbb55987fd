"""Glue between config, processed data, models and the training engine (used by stages and scan).

`train/` knows nothing of particular models and `models/` nothing of training; this module builds a
model from a JSON-able spec, its loaders, loss and LR, and hands them to the engine.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset, WeightedRandomSampler

from .config import Config
from .data.datasets import (FusionCollator, LengthGroupedBatchSampler, ProcessedData, TokenCollator, graph_collate)
from .data.identity import dataset_hash
from .errors import CheckpointError, StreamGuardError
from .graphs.builder import EDGE_TYPES
from .graphs.store import graph_statistics
from .io import atomic_write, load_torch, read_json, save_numpy_atomic, write_json_atomic
from .models.fusion import FusionModel
from .models.gnn import TaintFlowGNN
from .models.transformer import TransformerClassifier, build_encoder
from .train.collapse import CollapseConfig
from .train.engine import (CHECKPOINT_FILE, ParamGroupSpec, RunInfo, TrainConfig, load_best_weights, make_loader,
                           predict, resolve_device, train)
from .train.hardware import resolve_hardware
from .train.losses import make_loss
from .train.lr_cache import LRCache
from .train.lr_finder import find_lr, save_lr_outputs
from .train.metrics import compute_metrics, empty_metrics
from .train.outputs import build_metrics
from .train.seeding import make_generator, seed_everything

log = logging.getLogger("streamguard.runs")

MODEL_DIRS = {"transformer": "transformer_v17", "gnn": "gnn_v17", "fusion": "fusion_v17"}
LR_DIR = pathlib.Path("training/lr_find")


def run_dir(outputs: str | pathlib.Path, model: str, seed: int) -> pathlib.Path:
    return pathlib.Path(outputs) / MODEL_DIRS[model] / f"seed_{seed}"


# ---------------------------------------------------------------- model specs

def model_spec(kind: str, cfg: Config, data: ProcessedData) -> dict[str, Any]:
    """Everything needed to rebuild the architecture (saved in training_metadata.json for scan)."""
    t, g = cfg.transformer, cfg.gnn
    spec_t = {"vocab_size": data.vocab_size(), "pad_id": data.pad_id, "max_length": data.meta["max_length"],
              "hidden_size": t.hidden_size, "num_layers": t.num_layers, "num_heads": t.num_heads,
              "intermediate_size": t.intermediate_size, "dropout": t.dropout, "pretrained": t.pretrained}
    vocab = data.vocab
    spec_g = {"n_kinds": len(vocab["kinds"]), "n_feats": len(vocab["features"]), "n_tokens": data.vocab_size(),
              "n_edge_types": len(EDGE_TYPES), "hidden": g.hidden_size, "num_layers": g.num_layers,
              "conv": g.conv, "pooling": g.pooling, "dropout": g.dropout, "pad_token": data.pad_id}
    if kind == "transformer":
        return {"kind": kind, "transformer": spec_t}
    if kind == "gnn":
        return {"kind": kind, "gnn": spec_g}
    f = cfg.fusion
    return {"kind": kind, "transformer": spec_t, "gnn": spec_g, "hidden": f.hidden_size, "dropout": f.dropout}


def build_model(spec: dict[str, Any]) -> nn.Module:
    def transformer(s: dict) -> TransformerClassifier:
        enc = build_encoder(s["vocab_size"], s["pad_id"], s["max_length"], s["hidden_size"], s["num_layers"],
                            s["num_heads"], s["intermediate_size"], s["dropout"], s["pretrained"])
        return TransformerClassifier(enc, s["dropout"])

    if spec["kind"] == "transformer":
        return transformer(spec["transformer"])
    if spec["kind"] == "gnn":
        return TaintFlowGNN(**spec["gnn"])
    return FusionModel(transformer(spec["transformer"]), TaintFlowGNN(**spec["gnn"]), spec["hidden"], spec["dropout"])


# ---------------------------------------------------------------- data, loss, config

def class_weighting(kind: str, cfg: Config, labels: torch.Tensor) -> dict[str, Any]:
    """The effective class weighting, with a guard so the mechanisms never compound.

    A balanced sampler already shows both classes equally often, so it neutralizes the
    inverse-frequency loss weight; the vulnerable-class multiplier (an explicit recall preference)
    is applied on top of whichever remains.
    """
    pos = float(labels.sum())
    neg = float(len(labels) - pos)
    inv_freq = neg / pos if pos > 0 and neg > 0 else 1.0
    sec = getattr(cfg, kind)
    balanced = bool(getattr(sec, "balanced_sampler", False))
    use_inv = getattr(sec, "loss_weighting", "none") == "inverse_frequency" and not balanced
    mult = float(getattr(sec, "vuln_multiplier", 1.0))
    return {"balanced_sampler": balanced, "class_ratio": inv_freq, "inverse_frequency": inv_freq if use_inv else 1.0,
            "vuln_multiplier": mult, "pos_weight": (inv_freq if use_inv else 1.0) * mult,
            "neutralized_by_sampler": balanced and getattr(sec, "loss_weighting", "none") == "inverse_frequency"}


def make_loss_for(kind: str, cfg: Config, weighting: dict) -> nn.Module:
    if kind == "gnn":
        # Focal loss; class balance comes from the sampler, or from alpha (the negative share) when it is off.
        ratio = weighting["class_ratio"] * weighting["vuln_multiplier"]
        alpha = None if weighting["balanced_sampler"] else ratio / (1.0 + ratio)
        return make_loss("focal", focal_gamma=cfg.gnn.focal_gamma, focal_alpha=alpha)
    return make_loss("bce", pos_weight=weighting["pos_weight"])


def _balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=2).clamp(min=1).double()
    return (1.0 / counts)[labels]


def _split_dataset(data: ProcessedData, kind: str, split: str):
    if kind == "transformer":
        return data.tokens(split)
    if kind == "gnn":
        return data.graphs(split)
    return data.fusion(split)


def _run_datasets(data: ProcessedData, kind: str) -> dict:
    """The engine's train/val/test datasets for one model kind."""
    return {"train": _split_dataset(data, kind, "train"), "val": _split_dataset(data, kind, "valid"),
            "test": _split_dataset(data, kind, "test")}


def _labels(dataset) -> torch.Tensor:
    if isinstance(dataset, Subset):
        return _labels(dataset.dataset)[torch.as_tensor(dataset.indices)]
    return dataset.labels


def _lengths(dataset) -> torch.Tensor | None:
    if isinstance(dataset, Subset):
        inner = _lengths(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(dataset.indices)]
    return getattr(dataset, "lengths", None)


def make_loaders(kind: str, datasets: dict, batch_size: int, seed: int, data: ProcessedData,
                 balanced: bool, num_workers: int = 0, pin_memory: bool = False) -> dict:
    """train/val/test loaders; token-bearing data get length-grouped batches with dynamic padding."""
    collate = {"transformer": TokenCollator(data.pad_id), "gnn": graph_collate, "fusion": FusionCollator(data.pad_id)}[kind]
    loaders = {}
    for split, ds in datasets.items():
        train = split == "train"
        labels = _labels(ds)
        weights = _balanced_weights(labels) if (train and balanced) else None
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


def hardware_for(kind: str, cfg: Config):
    sec = getattr(cfg, kind)
    return resolve_hardware(kind, requested_batch=sec.batch_size * sec.grad_accum,
                            profile_values={"amp": cfg.train.amp, "num_workers": cfg.train.num_workers},
                            profile_sources={"amp": "params.yaml:train.amp", "num_workers": "params.yaml:train.num_workers"},
                            override_path=cfg.train.hardware_override)


def train_config(kind: str, cfg: Config, lr: float, hw, epochs: int | None = None) -> TrainConfig:
    sec = getattr(cfg, kind)
    return TrainConfig(
        epochs=epochs or sec.epochs, lr=lr, weight_decay=sec.weight_decay, warmup_ratio=sec.warmup_ratio,
        grad_accum=hw.grad_accum, max_grad_norm=sec.max_grad_norm, patience=sec.patience,
        monitor=cfg.train.select_metric, amp=hw.amp,
        collapse=dataclasses.replace(CollapseConfig(), patience=cfg.train.collapse_patience,
                                     explode_grad_norm=cfg.train.explode_grad_norm))


# ---------------------------------------------------------------- LR finder

def lr_find(kind: str, cfg: Config, data: ProcessedData, ds_hash: str, out_dir: pathlib.Path) -> dict:
    """LR range test through the persistent cache; writes the curve and recommended LR into out_dir."""
    sec = getattr(cfg, kind)
    spec = model_spec(kind, cfg, data)
    hw = hardware_for(kind, cfg)
    lf = cfg.lr_find
    # Everything that shapes the curve is in the key; what only matters later (epochs, patience,
    # warmup) is not, so changing those keeps the cached result.
    shaping = {k: v for k, v in dataclasses.asdict(sec).items() if k not in ("epochs", "patience", "warmup_ratio")}
    settings = {"steps": lf.steps, "start_lr": lf.start_lr, "end_lr": lf.end_lr, "batch_size": hw.batch_size,
                "grad_accum": hw.grad_accum, "amp": hw.amp, "section": shaping}
    cache = LRCache(lf.cache_dir, ttl_hours=lf.ttl_hours)

    def compute():
        seed_everything(cfg.seed)
        model = build_model(spec)
        train_ds = _split_dataset(data, kind, "train")
        weighting = class_weighting(kind, cfg, _labels(train_ds))
        loaders = make_loaders(kind, {"train": train_ds}, hw.batch_size, cfg.seed, data, weighting["balanced_sampler"])
        return find_lr(model, loaders["train"], make_loss_for(kind, cfg, weighting), (sec.lr_min, sec.lr_max),
                       amp=hw.amp, weight_decay=sec.weight_decay, max_grad_norm=sec.max_grad_norm,
                       grad_accum=hw.grad_accum, num_steps=lf.steps, start_lr=lf.start_lr, end_lr=lf.end_lr)

    if lf.enabled:
        result, outcome = cache.get_or_compute(kind, spec, ds_hash, cfg.seed, compute, finder_settings=settings)
        save_lr_outputs(result, out_dir, extra={"cache": {"hit": outcome.hit, "key": outcome.key, "reason": outcome.reason}})
        log.info("lr_find %s: lr=%.3g (%s), cache %s", kind, result.lr, result.confidence, "hit" if outcome.hit else "miss")
        return {"lr": result.lr, "confidence": result.confidence, "cache_hit": outcome.hit}
    lr = float(np.sqrt(sec.lr_min * sec.lr_max))
    write_json_atomic(out_dir / "recommended_lr.json", {"lr": lr, "confidence": "disabled", "lr_range": [sec.lr_min, sec.lr_max]})
    return {"lr": lr, "confidence": "disabled", "cache_hit": None}


def recommended_lr(kind: str, lr_dir: pathlib.Path = LR_DIR) -> float:
    path = lr_dir / kind / "recommended_lr.json"
    if not path.exists():
        raise StreamGuardError(f"{path}: not found; run the lr_find stage first (dvc repro lr_find)")
    try:
        return float(read_json(path)["lr"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StreamGuardError(f"{path}: field 'lr' unreadable ({exc}); re-run the lr_find stage") from None


# ---------------------------------------------------------------- training

def _run_info(kind: str, cfg: Config, seed: int, ds_hash: str, spec: dict, hw, extra: dict) -> RunInfo:
    sections = [kind] if kind != "fusion" else ["fusion", "transformer", "gnn"]
    config, sources = {}, {}
    for name in sections + ["train"]:
        values, srcs = cfg.section_with_sources(name)
        config[name] = values
        sources.update({f"{name}.{k}": v for k, v in srcs.items()})
    config["hardware"] = hw.to_dict()
    sources.update({f"hardware.{k}": v for k, v in hw.sources.items()})
    config["profile"] = cfg.profile
    return RunInfo(model_name=MODEL_DIRS[kind], seed=seed, dataset_hash=ds_hash, config=config,
                   config_sources=sources, extra={"model_spec": spec, **extra})


def _train_or_restart(build: Callable[[], tuple[nn.Module, list | None]], loaders: dict, loss_fn: nn.Module,
                      tc: TrainConfig, out: pathlib.Path, info: RunInfo) -> Any:
    """Train into `out`, resuming a compatible checkpoint left there by an interrupted run.

    DVC keeps run directories between runs (`persist: true`), so a killed stage resumes when re-run.
    A finished checkpoint is stale (DVC re-runs a stage only when a dependency changed: code,
    backbones, params), and one from another config or dataset or a corrupt one cannot be resumed:
    in those cases the directory is cleared and the run starts over.
    """
    ckpt_path = out / CHECKPOINT_FILE
    if ckpt_path.exists():
        try:
            finished = load_torch(ckpt_path).get("stop_reason") is not None
        except CheckpointError:
            finished = True  # unreadable: start over below
        if finished:
            log.info("%s holds a finished run; starting this run over", out)
            shutil.rmtree(out)
    model, groups = build()
    try:
        return train(model, loaders, loss_fn, tc, out, info, param_groups=groups)
    except CheckpointError as exc:
        if not (out / CHECKPOINT_FILE).exists():
            raise
        log.warning("%s; starting this run over", exc)
        shutil.rmtree(out)
        seed_everything(info.seed)
        model, groups = build()
        return train(model, loaders, loss_fn, tc, out, info, param_groups=groups)


def train_single(kind: str, cfg: Config, seed: int, outputs: str | pathlib.Path = "training/outputs",
                 processed: str | pathlib.Path = "data/processed", lr_dir: pathlib.Path = LR_DIR) -> Any:
    """Train the transformer or the GNN for one seed into its run directory."""
    data = ProcessedData(processed)
    ds_hash = dataset_hash(processed)
    seed_everything(seed)
    spec = model_spec(kind, cfg, data)
    hw = hardware_for(kind, cfg)
    datasets = _run_datasets(data, kind)
    weighting = class_weighting(kind, cfg, _labels(datasets["train"]))
    log.info("%s seed %d: class weighting %s", kind, seed, weighting)
    loaders = make_loaders(kind, datasets, hw.batch_size, seed, data, weighting["balanced_sampler"], hw.num_workers, hw.pin_memory)
    lr = recommended_lr(kind, lr_dir)
    out = run_dir(outputs, kind, seed)
    result = _train_or_restart(lambda: (build_model(spec), None), loaders, make_loss_for(kind, cfg, weighting),
                               train_config(kind, cfg, lr, hw), out,
                               _run_info(kind, cfg, seed, ds_hash, spec, hw, {"class_weighting": weighting, "lr_source": "lr_find"}))
    for name in ("lr_curve.png", "lr_curve.csv"):  # the curve this run's LR came from, beside its results
        src = lr_dir / kind / name
        if src.exists():
            with atomic_write(out / name, "wb") as fh:
                fh.write(src.read_bytes())
    if kind == "gnn":
        write_json_atomic(out / "graph_statistics.json",
                          {split: graph_statistics(data.graphs(split).packed) for split in ("train", "valid", "test")})
    return result


def _lr_mults(cfg: Config) -> dict[str, float]:
    f = cfg.fusion
    return {"transformer": f.lr_mult_transformer, "gnn": f.lr_mult_gnn, "fusion": f.lr_mult_fusion}


def _fusion_groups(model: FusionModel, cfg: Config) -> list[ParamGroupSpec]:
    mults = _lr_mults(cfg)
    return [ParamGroupSpec(name, module, mults[name]) for name, module in model.component_modules().items()]


def _gradient_stats(history: list[dict], mults: dict[str, float]) -> dict:
    return {"components": list(mults), "lr_mult": mults,
            "epochs": [{"epoch": row["epoch"], **{name: row.get(f"grad_norm_{name}") for name in mults},
                        "total_before_clip": row.get("grad_norm_before_clip")} for row in history]}


def out_of_fold(cfg: Config, seed: int, data: ProcessedData, spec: dict, hw, scratch: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """OOF probabilities for every training sample from fold models that never saw it.

    Each fold model is a fresh fusion model (branches from random init, not from the seed's trained
    backbones, which saw every training sample) trained on the other folds; the official validation
    split drives its early stopping, so the held-out fold is never used for any choice.
    """
    from sklearn.model_selection import StratifiedKFold

    train_ds = data.fusion("train")
    labels = train_ds.labels.detach().cpu().numpy().copy()
    folds = np.full(len(labels), -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=cfg.fusion.oof_folds, shuffle=True, random_state=cfg.seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held] = k
    probs = np.full(len(labels), np.nan, dtype=np.float64)
    for k in range(cfg.fusion.oof_folds):
        fit_idx, held_idx = np.flatnonzero(folds != k).tolist(), np.flatnonzero(folds == k).tolist()
        seed_everything(seed * 100 + k)
        model = build_model(spec)
        groups = _fusion_groups(model, cfg)
        weighting = class_weighting("fusion", cfg, train_ds.labels[fit_idx])
        loaders = make_loaders("fusion", {"train": Subset(train_ds, fit_idx), "val": data.fusion("valid"),
                                          "held": Subset(train_ds, held_idx)},
                               hw.batch_size, seed * 100 + k, data, False, hw.num_workers, hw.pin_memory)
        held_loader = loaders.pop("held")
        tc = train_config("fusion", cfg, cfg.fusion.base_lr, hw, epochs=cfg.fusion.oof_epochs)
        train(model, loaders, make_loss_for("fusion", cfg, weighting), tc, scratch / f"fold_{k}",
              RunInfo(model_name=f"fusion_oof_fold{k}", seed=seed), param_groups=groups)
        pred = predict(model, held_loader, resolve_device(tc.device))
        probs[held_idx] = pred.probs
    return probs.astype(np.float32), folds


def _backbone_weights(outputs: str | pathlib.Path, seed: int) -> dict[str, dict] | str:
    """Both trained branches of `seed`, or the reason they cannot be used."""
    weights = {}
    for name in ("transformer", "gnn"):
        ckpt = run_dir(outputs, name, seed) / CHECKPOINT_FILE
        if not ckpt.exists():
            raise StreamGuardError(f"{ckpt}: not found; train the {name} for seed {seed} first (dvc repro train_{name}@{seed})")
        try:
            weights[name] = load_best_weights(ckpt)
        except CheckpointError as exc:
            return f"the {name} backbone has no usable weights ({exc})"
    return weights


def _write_upstream_collapse(out: pathlib.Path, seed: int, lr: float, reason: str) -> None:
    """A fusion run whose backbone collapsed is itself a collapsed result, so aggregate still runs."""
    if out.exists():
        shutil.rmtree(out)
    write_json_atomic(out / "collapse_report.json", {"status": "collapsed", "reason": reason})
    write_json_atomic(out / "metrics.json", build_metrics(MODEL_DIRS["fusion"], seed, "collapsed", lr, None, None, 0,
                                                          0.0, empty_metrics(), empty_metrics()))
    log.warning("fusion seed %d not trained: %s", seed, reason)


def train_fusion(cfg: Config, seed: int, outputs: str | pathlib.Path = "training/outputs",
                 processed: str | pathlib.Path = "data/processed") -> Any:
    """Fusion from the same seed's trained backbones, then out-of-fold predictions on train."""
    import tempfile

    data = ProcessedData(processed)
    ds_hash = dataset_hash(processed)
    out = run_dir(outputs, "fusion", seed)
    backbones = _backbone_weights(outputs, seed)
    if isinstance(backbones, str):
        _write_upstream_collapse(out, seed, cfg.fusion.base_lr, backbones)
        return None
    seed_everything(seed)
    spec = model_spec("fusion", cfg, data)

    def build():
        model = build_model(spec)
        model.transformer.load_state_dict(backbones["transformer"])
        model.gnn.load_state_dict(backbones["gnn"])
        return model, _fusion_groups(model, cfg)

    hw = hardware_for("fusion", cfg)
    datasets = _run_datasets(data, "fusion")
    weighting = class_weighting("fusion", cfg, datasets["train"].labels)
    loaders = make_loaders("fusion", datasets, hw.batch_size, seed, data, False, hw.num_workers, hw.pin_memory)
    tc = train_config("fusion", cfg, cfg.fusion.base_lr, hw)
    info = _run_info("fusion", cfg, seed, ds_hash, spec, hw,
                     {"class_weighting": weighting, "branches_from": {n: str(run_dir(outputs, n, seed)) for n in ("transformer", "gnn")}})
    result = _train_or_restart(build, loaders, make_loss_for("fusion", cfg, weighting), tc, out, info)
    write_json_atomic(out / "gradient_stats.json", _gradient_stats(result.history, _lr_mults(cfg)))

    with tempfile.TemporaryDirectory(prefix="oof-") as scratch:
        probs, folds = out_of_fold(cfg, seed, data, spec, hw, pathlib.Path(scratch))
    save_numpy_atomic(out / "oof_predictions.npy", probs)
    save_numpy_atomic(out / "oof_folds.npy", folds)
    labels = datasets["train"].labels.detach().cpu().numpy().copy()
    metrics = read_json(out / "metrics.json")
    metrics["oof"] = compute_metrics(labels, probs.astype(np.float64), threshold=0.5)
    write_json_atomic(out / "metrics.json", metrics)
    return result
