"""The three models through the real engine on a tiny real dataset (the `trained` fixture in conftest.py):
files, fusion, OOF without leakage, restart, class weighting."""
import numpy as np
import pytest
import torch

from streamguard import runs
from streamguard.data.datasets import ProcessedData
from streamguard.io import read_json
from streamguard.train import engine

from .fixtures import tiny_config


def test_single_runs_write_the_plan_tree(trained):
    _, _, _, outputs = trained
    for kind in ("transformer", "gnn"):
        d = runs.run_dir(outputs, kind, 42)
        for name in ("model_checkpoint.pt", "training_metadata.json", "metrics_history.csv", "metrics.json"):
            assert (d / name).is_file(), (kind, name)
        metrics = read_json(d / "metrics.json")
        # Both learn something on this data in one or two epochs; a collapse here is a regression.
        assert metrics["status"] == "ok" and metrics["lr"] == 1e-3
        assert metrics["test"]["roc_auc"] is not None
        meta = read_json(d / "training_metadata.json")
        assert meta["extra"]["model_spec"]["kind"] == kind
    stats = read_json(runs.run_dir(outputs, "gnn", 42) / "graph_statistics.json")
    assert set(stats) == {"train", "valid", "test"} and stats["train"]["count"] > 0


def test_fusion_trains_from_backbones_and_writes_leak_free_oof(trained, monkeypatch):
    root, processed, cfg, outputs = trained
    seen = []
    real_train = engine.train

    def spy(model, loaders, *args, **kwargs):  # records what each fold model trains on, then trains for real
        ds = loaders["train"].dataset
        seen.append(list(ds.indices) if isinstance(ds, torch.utils.data.Subset) else None)
        return real_train(model, loaders, *args, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    runs.train_run("fusion", cfg, 42, outputs, processed)
    d = runs.run_dir(outputs, "fusion", 42)
    n_train = len(ProcessedData(processed).tokens("train"))
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
    # A group (a synthetic function and its patched twin) is held out together: no fold model saw the
    # twin of a function it predicts.
    groups = [r["group"] for r in ProcessedData(processed).records("train", fields=("group",))]
    assert len(set(groups)) < len(groups)  # the data has twins, so the check below can fail
    for g in set(groups):
        assert len({int(folds[i]) for i, h in enumerate(groups) if h == g}) == 1, g
    metrics = read_json(d / "metrics.json")
    assert set(metrics["oof"]) >= {"accuracy", "f1", "roc_auc"}
    grads = read_json(d / "gradient_stats.json")
    assert grads["components"] == ["transformer", "gnn", "fusion"]
    assert all(e[c] is not None and e[c] > 0 for e in grads["epochs"] for c in grads["components"])


def test_fusion_without_backbones_is_a_clear_error(trained, tmp_path):
    _, processed, cfg, _ = trained
    from streamguard.errors import StreamGuardError
    with pytest.raises(StreamGuardError, match="model_checkpoint.pt: not found; train the transformer for seed 7 first"):
        runs.train_run("fusion", cfg, 7, tmp_path / "empty", processed)


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
    assert runs.train_run("fusion", cfg, 42, copy, processed) is None
    d = runs.run_dir(copy, "fusion", 42)
    assert read_json(d / "metrics.json")["status"] == "collapsed"
    assert "gnn backbone has no usable weights" in read_json(d / "collapse_report.json")["reason"]


def test_changed_config_restarts_a_kept_run_directory(trained, caplog):
    """DVC keeps run dirs (persist); a finished or foreign checkpoint starts over instead of failing."""
    import logging
    caplog.set_level(logging.INFO, logger="streamguard.runs")
    _, processed, cfg, outputs = trained
    other = tiny_config(**{"transformer.epochs": 2, "transformer.weight_decay": 0.02})
    lr_dir = outputs.parent / "lr"
    result = runs.train_run("transformer", other, 42, outputs, processed, lr_dir=lr_dir)
    assert result.metrics["epochs_run"] == 2
    assert "starting this run over" in caplog.text


def test_unreadable_checkpoint_is_an_error_and_deletes_nothing(trained, tmp_path):
    """A run directory whose checkpoint is garbage (a torn copy) stops with one line naming the file;
    the directory is left as it was for the user to restore or remove."""
    import shutil

    from streamguard.errors import CorruptFileError
    _, processed, cfg, outputs = trained
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    run = runs.run_dir(copy, "gnn", 42)
    ckpt = run / "model_checkpoint.pt"
    ckpt.write_bytes(b"not a checkpoint")
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(CorruptFileError) as err:
        runs.train_run("gnn", cfg, 42, copy, processed, lr_dir=outputs.parent / "lr")
    assert str(err.value).startswith(f"{ckpt}: cannot load") and "restore it" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert ckpt.read_bytes() == b"not a checkpoint" and sorted(p.name for p in run.iterdir()) == before


def test_lr_finder_disabled_takes_the_middle_of_the_range(trained, tmp_path):
    _, processed, _, _ = trained
    cfg = tiny_config(**{"lr_find.enabled": False, "gnn.lr_min": 1e-4, "gnn.lr_max": 1e-2,
                         "lr_find.cache_dir": str(tmp_path / "cache")})
    out = runs.lr_find("gnn", cfg, ProcessedData(processed), "hash", tmp_path / "gnn")
    assert out == {"lr": pytest.approx(1e-3), "confidence": "disabled", "cache_hit": None}
    assert read_json(tmp_path / "gnn" / "recommended_lr.json")["lr"] == pytest.approx(1e-3)
    assert runs.recommended_lr("gnn", tmp_path) == pytest.approx(1e-3)
    assert not (tmp_path / "cache").exists()  # the finder and its cache were not touched


def test_transformer_class_weighting_guard_never_compounds():
    labels = torch.tensor([1] * 10 + [0] * 30)
    w = runs.class_weighting(tiny_config(**{"transformer.vuln_multiplier": 2.0}).transformer, labels)
    assert w["pos_weight"] == pytest.approx(3.0 * 2.0) and not w["neutralized_by_sampler"]
    cfg = tiny_config(**{"transformer.balanced_sampler": True, "transformer.vuln_multiplier": 2.0})
    w = runs.class_weighting(cfg.transformer, labels)
    assert w["inverse_frequency"] == 1.0 and w["pos_weight"] == pytest.approx(2.0) and w["neutralized_by_sampler"]


def test_gnn_class_weighting_moves_to_the_focal_alpha_without_the_sampler():
    labels = torch.tensor([1] * 10 + [0] * 30)
    gnn = runs.get_kind("gnn")
    balanced = tiny_config().gnn  # the default: a balanced sampler, so the loss itself is unweighted
    w = runs.class_weighting(balanced, labels)
    assert w["balanced_sampler"] and w["pos_weight"] == 1.0
    assert gnn.loss(balanced, w).alpha is None
    plain = tiny_config(**{"gnn.balanced_sampler": False}).gnn
    w = runs.class_weighting(plain, labels)
    assert not w["balanced_sampler"] and w["class_ratio"] == pytest.approx(3.0)
    assert gnn.loss(plain, w).alpha == pytest.approx(0.75)  # the negative share weighs the positives


def test_fusion_class_weighting_is_neutral():
    """The fusion section has no weighting knobs: plain BCE whatever the class ratio."""
    labels = torch.tensor([1] * 10 + [0] * 30)
    cfg = tiny_config()
    w = runs.class_weighting(cfg.fusion, labels)
    assert w["pos_weight"] == 1.0 and not w["balanced_sampler"]
    loss = runs.get_kind("fusion").loss(cfg.fusion, w)
    logits, target = torch.tensor([0.3, -1.0]), torch.tensor([1.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert torch.allclose(loss(logits, target), expected)


def test_runs_save_test_predictions_that_reproduce_their_test_metrics(trained):
    """test_predictions.npy (test-split order) is what the report's paired comparisons read."""
    import numpy as np
    from streamguard.train.metrics import compute_metrics
    _, processed, cfg, outputs = trained
    labels = ProcessedData(processed).tokens("test").labels.numpy()
    for kind in ("transformer", "gnn"):
        d = runs.run_dir(outputs, kind, 42)
        probs = np.load(d / "test_predictions.npy")
        metrics = read_json(d / "metrics.json")
        assert probs.shape == labels.shape
        again = compute_metrics(labels, probs.astype(np.float64), metrics["threshold"])
        assert again == pytest.approx(metrics["test"], abs=1e-6)


def test_threshold_policy_reaches_the_engine(trained, tmp_path):
    """An fpr policy with a zero budget flags no validation negative: precision on val is 1 or undefined."""
    _, processed, _, outputs = trained
    cfg = tiny_config(**{"gnn.epochs": 1, "train.threshold_policy": "fpr", "train.target_fpr": 0.0})
    result = runs.train_run("gnn", cfg, 42, tmp_path / "out", processed, lr_dir=outputs.parent / "lr")
    val = result.metrics["val"]
    assert val["precision"] in (1.0, None)  # no false positive on validation
