"""Out-of-fold predictions on the training split (for kinds with `out_of_fold`, e.g. the fusion)."""
from __future__ import annotations

import pathlib

import numpy as np
from torch.utils.data import Subset

from ..config import Config
from ..data.lexical import fold_ids
from ..kinds import get_kind
from ..train import engine
from ..train.seeding import seed_everything
from .loaders import class_weighting, make_loaders
from .setup import loop_config


def out_of_fold(kind_name: str, cfg: Config, seed: int, data, spec: dict, hw, lr: float,
                scratch: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """OOF probabilities for every training sample from fold models that never saw it.

    Each fold model is fresh (from the spec, not from the seed's trained backbones, which saw every
    training sample) and trained on the other folds; the official validation split drives its early
    stopping, so the held-out fold is never used for any choice. The folds are the lexical view's
    (stratified, a group such as a function and its patched twin in one fold), so no fold model has
    seen the twin of a function it predicts.
    """
    kind = get_kind(kind_name)
    sec = getattr(cfg, kind_name)
    train_ds = kind.dataset(data, "train")
    labels = train_ds.labels.detach().cpu().numpy().copy()
    groups = [r["group"] for r in data.records("train", fields=("label", "group"))]
    folds = fold_ids(labels, groups, sec.oof_folds, cfg.seed)
    probs = np.full(len(labels), np.nan, dtype=np.float64)
    for k in range(sec.oof_folds):
        fit_idx, held_idx = np.flatnonzero(folds != k).tolist(), np.flatnonzero(folds == k).tolist()
        fold_seed = seed * 100 + k
        seed_everything(fold_seed)
        model = kind.build(spec)
        groups = kind.param_groups(model, sec)
        weighting = class_weighting(sec, train_ds.labels[fit_idx])
        loaders = make_loaders(kind, {"train": Subset(train_ds, fit_idx), "val": kind.dataset(data, "valid"),
                                      "held": Subset(train_ds, held_idx)},
                               hw.batch_size, fold_seed, data.pad_id, False, hw.num_workers, hw.pin_memory)
        held_loader = loaders.pop("held")
        lc = loop_config(kind_name, cfg, lr, hw, epochs=sec.oof_epochs)
        # Through the module attribute, so a test can watch what each fold model trains on.
        engine.train(model, loaders, kind.loss(sec, weighting), lc, scratch / f"fold_{k}",
                     engine.RunInfo(model_name=f"{kind_name}_oof_fold{k}", seed=seed), param_groups=groups)
        probs[held_idx] = engine.predict(model, held_loader, engine.resolve_device(lc.device)).probs
    return probs.astype(np.float32), folds
