"""One training run of any registered kind for one seed, into its run directory (the train stages' work)."""
from __future__ import annotations

import logging
import pathlib
import shutil
import tempfile
from typing import Any, Callable

import numpy as np
from torch import nn

from ..config import Config
from ..data.datasets import ProcessedData
from ..data.identity import dataset_hash
from ..errors import CheckpointError, CorruptFileError, StreamGuardError
from ..io import atomic_write, load_torch, read_json, save_numpy_atomic, write_json_atomic
from ..kinds import get_kind
from ..train import distributed, engine
from ..train.distributed import on_main
from ..train.metrics import compute_metrics, empty_metrics
from ..train.outputs import build_metrics
from ..train.seeding import seed_everything
from .loaders import class_weighting, make_loaders, run_datasets
from .lr import recommended_lr
from .oof import out_of_fold
from .pretrain import pretrained_trunk
from .setup import hardware_for, loop_config, run_dir, run_info

log = logging.getLogger("streamguard.runs")


def train_or_restart(build: Callable[[], tuple[nn.Module, list | None]], loaders: dict, loss_fn: nn.Module,
                     lc: engine.LoopConfig, out: pathlib.Path, info: engine.RunInfo) -> Any:
    """Train into `out`, resuming a compatible checkpoint left there by an interrupted run.

    DVC keeps run directories between runs (`persist: true`), so a killed stage resumes when re-run.
    A finished checkpoint is stale (DVC re-runs a stage only when a dependency changed: code,
    backbones, params), and one from another config or dataset cannot be resumed: in those cases
    the directory is cleared and the run starts over. A checkpoint that cannot be read at all
    (truncated, damaged) is an error (`CorruptFileError`, exit 2) and nothing is deleted.
    """
    on_main(_clear_finished, out)  # under torchrun: once, on the rank that writes the directory
    model, groups = build()
    try:
        return engine.train(model, loaders, loss_fn, lc, out, info, param_groups=groups)
    except CheckpointError as exc:
        if not on_main((out / engine.CHECKPOINT_FILE).exists):
            raise
        log.warning("%s; starting this run over", exc)
        on_main(shutil.rmtree, out)
        seed_everything(info.seed)
        model, groups = build()
        return engine.train(model, loaders, loss_fn, lc, out, info, param_groups=groups)


def _clear_finished(out: pathlib.Path) -> None:
    ckpt_path = out / engine.CHECKPOINT_FILE
    if ckpt_path.exists():
        try:
            ckpt = load_torch(ckpt_path)
        except CorruptFileError:  # damaged on disk (writes are atomic): a fault to report, never to erase
            raise
        if not isinstance(ckpt, dict) or ckpt.get("stop_reason") is not None:
            log.info("%s holds a finished run; starting this run over", out)
            shutil.rmtree(out)


def _backbone_weights(kind, outputs, seed: int) -> dict[str, dict] | str:
    """The best weights of every backbone of `kind` for `seed`, or the reason they cannot be used."""
    weights = {}
    for name in kind.backbones:
        ckpt = run_dir(outputs, name, seed) / engine.CHECKPOINT_FILE
        if not ckpt.exists():
            raise StreamGuardError(f"{ckpt}: not found; train the {name} for seed {seed} first (dvc repro train_{name}@{seed})")
        try:
            weights[name] = engine.load_best_weights(ckpt)
        except CorruptFileError:
            raise  # an error to report, not a collapsed backbone: the fusion run is left as it is
        except CheckpointError as exc:
            return f"the {name} backbone has no usable weights ({exc})"
    return weights


def _write_upstream_collapse(kind, out: pathlib.Path, seed: int, lr: float, reason: str) -> None:
    """A run whose backbone collapsed is itself a collapsed result, so aggregate still runs."""
    if on_main(out.exists):
        on_main(shutil.rmtree, out)
    write_json_atomic(out / engine.COLLAPSE_FILE, {"status": "collapsed", "reason": reason})
    write_json_atomic(out / engine.METRICS_FILE, build_metrics(kind.output_dir, seed, "collapsed", lr, None, None, 0,
                                                               empty_metrics(), empty_metrics()))
    log.warning("%s seed %d not trained: %s", kind.name, seed, reason)


def _gradient_stats(history: list[dict], groups: list) -> dict:
    mults = {g.name: g.lr_mult for g in groups}
    return {"components": list(mults), "lr_mult": mults,
            "epochs": [{"epoch": row["epoch"], **{name: row.get(f"grad_norm_{name}") for name in mults},
                        "total_before_clip": row.get("grad_norm_before_clip")} for row in history]}


def _copy_lr_curve(lr_dir: pathlib.Path, kind_name: str, out: pathlib.Path) -> None:
    for name in ("lr_curve.png", "lr_curve.csv"):  # the curve this run's LR came from, beside its results
        src = pathlib.Path(lr_dir) / kind_name / name
        if src.exists():
            with atomic_write(out / name, "wb") as fh:
                fh.write(src.read_bytes())


def train_run(kind_name: str, cfg: Config, seed: int, outputs: str | pathlib.Path = "training/outputs",
              processed: str | pathlib.Path = "data/processed", lr_dir: str | pathlib.Path = "training/lr_find",
              logs: str | pathlib.Path | None = None, pretrain_dir: str | pathlib.Path | None = None) -> Any:
    """Train `kind_name` for one seed into its run directory; None when a backbone left nothing to start from.

    A kind with `starts_from_pretrain` starts from the trunk in `pretrain_dir` when the pretrain stage
    wrote one (None: from its fresh initialisation). With `logs`, the run's varying facts (wall times,
    git commit) go to `{logs}/{output_dir}/seed_{S}/` instead of the run directory, so that the run
    directory (a DVC out) is the same on every rerun.
    """
    kind = get_kind(kind_name)
    sec = getattr(cfg, kind_name)
    data = ProcessedData(processed)
    ds_hash = dataset_hash(processed)
    out = run_dir(outputs, kind_name, seed)
    # Inputs other processes of a torchrun may not have on disk: read on rank 0 and shared.
    lr = on_main(recommended_lr, kind_name, pathlib.Path(lr_dir)) if kind.uses_lr_finder else kind.learning_rate(sec)
    backbones = on_main(_backbone_weights, kind, outputs, seed)
    if isinstance(backbones, str):
        _write_upstream_collapse(kind, out, seed, lr, backbones)
        return None
    seed_everything(seed)
    spec = kind.spec(cfg, data)
    trunk = on_main(pretrained_trunk, kind, spec, pretrain_dir)  # read on rank 0, shared
    hw = hardware_for(kind_name, cfg)
    datasets = run_datasets(kind, data)
    weighting = class_weighting(sec, datasets["train"].labels)
    log.info("%s seed %d: class weighting %s", kind_name, seed, weighting)
    loaders = make_loaders(kind, datasets, hw.batch_size, seed, data.pad_id, weighting["balanced_sampler"],
                           hw.num_workers, hw.pin_memory)

    built_groups: list = []

    def build():
        model = kind.build(spec)
        if trunk is not None:
            kind.load_pretrained(model, trunk.state)
        if kind.backbones:
            kind.load_backbones(model, backbones)
        built_groups[:] = [kind.param_groups(model, sec)]
        return model, built_groups[0]

    extra: dict[str, Any] = {"class_weighting": weighting}
    if kind.uses_lr_finder:
        extra["lr_source"] = "lr_find"
    if trunk is not None:
        extra["init_from"] = {"pretrain": str(pretrain_dir), "sha256": trunk.sha256}
    if kind.backbones:
        extra["branches_from"] = {n: str(run_dir(outputs, n, seed)) for n in kind.backbones}
    result = train_or_restart(build, loaders, kind.loss(sec, weighting), loop_config(kind_name, cfg, lr, hw), out,
                              run_info(kind_name, cfg, seed, ds_hash, spec, hw, extra,
                                       None if logs is None else run_dir(logs, kind_name, seed),
                                       None if trunk is None else trunk.sha256))
    if kind.uses_lr_finder:
        _copy_lr_curve(pathlib.Path(lr_dir), kind_name, out)
    if built_groups[0] is not None:  # per-component gradient norms of a discriminative-LR run
        write_json_atomic(out / "gradient_stats.json", _gradient_stats(result.history, built_groups[0]))
    kind.extra_outputs(data, out)
    if kind.out_of_fold:
        _write_out_of_fold(kind_name, cfg, seed, data, spec, hw, lr, out, datasets["train"].labels)
    return result


def _write_out_of_fold(kind_name, cfg, seed, data, spec, hw, lr, out, train_labels) -> None:
    with tempfile.TemporaryDirectory(prefix="oof-") as scratch:
        probs, folds = out_of_fold(kind_name, cfg, seed, data, spec, hw, lr, pathlib.Path(scratch))
    if not distributed.current().is_main:
        return  # the files below are rank 0's
    save_numpy_atomic(out / "oof_predictions.npy", probs)
    save_numpy_atomic(out / "oof_folds.npy", folds)
    labels = train_labels.detach().cpu().numpy().copy()
    metrics = read_json(out / engine.METRICS_FILE)
    metrics["oof"] = compute_metrics(labels, probs.astype(np.float64), threshold=0.5)
    write_json_atomic(out / engine.METRICS_FILE, metrics)
