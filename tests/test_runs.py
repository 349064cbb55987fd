"""The three models through the real engine on a tiny real dataset: files, fusion, OOF without leakage."""
import numpy as np
import pytest
import torch

from streamguard import runs
from streamguard.io import read_json, write_json_atomic

from .fixtures import make_processed


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    processed, cfg = make_processed(root, **{"transformer.epochs": 1, "gnn.epochs": 2, "fusion.epochs": 1})
    lr_dir = root / "lr"
    for kind, lr in (("transformer", 1e-3), ("gnn", 1e-3)):
        write_json_atomic(lr_dir / kind / "recommended_lr.json", {"lr": lr})
    outputs = root / "outputs"
    for kind in ("transformer", "gnn"):
        runs.train_single(kind, cfg, 42, outputs, processed, lr_dir=lr_dir)
    return root, processed, cfg, outputs


def test_single_runs_write_the_plan_tree(trained):
    _, _, _, outputs = trained
    for kind in ("transformer", "gnn"):
        d = runs.run_dir(outputs, kind, 42)
        for name in ("model_checkpoint.pt", "training_metadata.json", "metrics_history.csv", "metrics.json"):
            assert (d / name).is_file(), (kind, name)
        metrics = read_json(d / "metrics.json")
        assert metrics["status"] in ("ok", "collapsed") and metrics["lr"] == 1e-3
        meta = read_json(d / "training_metadata.json")
        assert meta["extra"]["model_spec"]["kind"] == kind
    stats = read_json(runs.run_dir(outputs, "gnn", 42) / "graph_statistics.json")
    assert set(stats) == {"train", "valid", "test"} and stats["train"]["count"] > 0


def test_fusion_trains_from_backbones_and_writes_leak_free_oof(trained, monkeypatch):
    root, processed, cfg, outputs = trained
    seen = []
    real_train = runs.train

    def spy(model, loaders, *args, **kwargs):  # records what each fold model trains on, then trains for real
        ds = loaders["train"].dataset
        seen.append(list(ds.indices) if isinstance(ds, torch.utils.data.Subset) else None)
        return real_train(model, loaders, *args, **kwargs)

    monkeypatch.setattr(runs, "train", spy)
    runs.train_fusion(cfg, 42, outputs, processed)
    d = runs.run_dir(outputs, "fusion", 42)
    n_train = len(runs.ProcessedData(processed).tokens("train"))
    probs = np.load(d / "oof_predictions.npy")
    folds = np.load(d / "oof_folds.npy")
    assert probs.shape == (n_train,) and np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    assert sorted(set(folds.tolist())) == list(range(cfg.fusion.oof_folds))
    fold_train_sets = seen[1:]  # seen[0] is the main fusion run on the whole train split
    assert seen[0] is None and len(fold_train_sets) == cfg.fusion.oof_folds
    for k, fit in enumerate(fold_train_sets):
        held = set(np.flatnonzero(folds == k).tolist())
        assert held and not held & set(fit), f"fold {k} trained on its held-out samples"
        assert held | set(fit) == set(range(n_train))
    metrics = read_json(d / "metrics.json")
    assert set(metrics["oof"]) >= {"accuracy", "f1", "roc_auc"}
    grads = read_json(d / "gradient_stats.json")
    assert grads["components"] == ["transformer", "gnn", "fusion"]
    assert all(e[c] is not None and e[c] > 0 for e in grads["epochs"] for c in grads["components"])


def test_fusion_without_backbones_is_a_clear_error(trained, tmp_path):
    _, processed, cfg, _ = trained
    from streamguard.errors import StreamGuardError
    with pytest.raises(StreamGuardError, match="model_checkpoint.pt: not found; train the transformer for seed 7 first"):
        runs.train_fusion(cfg, 7, tmp_path / "empty", processed)


def test_fusion_over_a_collapsed_backbone_is_a_collapsed_result(trained, tmp_path):
    """A backbone that collapsed before any epoch has no weights: fusion reports collapsed, exit 0."""
    import shutil
    from streamguard.io import load_torch, save_torch_atomic
    _, processed, cfg, outputs = trained
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    ckpt_path = runs.run_dir(copy, "gnn", 42) / "model_checkpoint.pt"
    ckpt = load_torch(ckpt_path)
    ckpt["best_model"] = None
    save_torch_atomic(ckpt_path, ckpt)
    assert runs.train_fusion(cfg, 42, copy, processed) is None
    d = runs.run_dir(copy, "fusion", 42)
    assert read_json(d / "metrics.json")["status"] == "collapsed"
    assert "gnn backbone has no usable weights" in read_json(d / "collapse_report.json")["reason"]


def test_changed_config_restarts_a_kept_run_directory(trained, caplog):
    """DVC keeps run dirs (persist); a finished or foreign checkpoint starts over instead of failing."""
    import logging
    caplog.set_level(logging.INFO, logger="streamguard.runs")
    _, processed, cfg, outputs = trained
    from streamguard.config import load_config
    from tests.fixtures import TINY
    other = load_config("params.yaml", overrides={**TINY, "transformer.epochs": 2, "transformer.weight_decay": 0.02})
    lr_dir = outputs.parent / "lr"
    result = runs.train_single("transformer", other, 42, outputs, processed, lr_dir=lr_dir)
    assert result.metrics["epochs_run"] == 2
    assert "starting this run over" in caplog.text


def test_class_weighting_guard_never_compounds():
    from streamguard.config import load_config
    labels = torch.tensor([1] * 10 + [0] * 30)
    cfg = load_config("params.yaml", overrides={"transformer.vuln_multiplier": 2.0})
    w = runs.class_weighting("transformer", cfg, labels)
    assert w["pos_weight"] == pytest.approx(3.0 * 2.0) and not w["neutralized_by_sampler"]
    cfg = load_config("params.yaml", overrides={"transformer.balanced_sampler": True, "transformer.vuln_multiplier": 2.0})
    w = runs.class_weighting("transformer", cfg, labels)
    assert w["inverse_frequency"] == 1.0 and w["pos_weight"] == pytest.approx(2.0) and w["neutralized_by_sampler"]
