"""Forced collapses of each kind end the run normally with status 'collapsed' and a report."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from streamguard.io import read_json
from streamguard.train.collapse import CollapseConfig, CollapseDetector, prediction_histogram
from streamguard.train.engine import COLLAPSE_FILE, METRICS_FILE, LoopConfig, RunInfo, train
from streamguard.train.losses import make_loss
from streamguard.train.seeding import seed_everything

from .helpers import toy_loaders


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)

    def forward(self, batch):
        return self.lin(batch["x"]).squeeze(-1) * float("nan")


class ZeroGradModel(nn.Module):
    """Trainable, but the output does not depend on the parameters: every gradient is exactly 0."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)

    def forward(self, batch):
        return self.lin(batch["x"]).squeeze(-1) * 0.0 + batch["x"][:, 0]


class DetachedModel(nn.Module):
    """The trainable head is bypassed: the loss does not require grad, no parameter gets a gradient."""

    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(8, 1).requires_grad_(False)
        self.unused = nn.Linear(8, 1)

    def forward(self, batch):
        return self.frozen(batch["x"]).squeeze(-1)


class ConstantModel(nn.Module):
    """One logit for every sample, whatever the input."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(0.3))

    def forward(self, batch):
        return self.bias.expand(batch["x"].shape[0])


class HugeGradModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)

    def forward(self, batch):
        return 1e7 * self.lin(batch["x"]).squeeze(-1)


def run(model, out_dir, epochs=5):
    seed_everything(0)
    cfg = LoopConfig(epochs=epochs, lr=1e-3, patience=10)
    return train(model, toy_loaders(0), make_loss("bce"), cfg, out_dir, RunInfo("toy", 0, "h"))


@pytest.mark.parametrize("model_cls, kind", [
    (NaNModel, "nonfinite_loss"),
    (ZeroGradModel, "zero_grad"),
    (DetachedModel, "zero_grad"),
    (HugeGradModel, "exploding_grad"),
])
def test_step_level_collapse_stops_within_the_first_epoch(tmp_path, model_cls, kind):
    model = model_cls()
    result = run(model, tmp_path)
    assert result.status == "collapsed" and result.stop_reason == "collapsed"
    report = read_json(tmp_path / COLLAPSE_FILE)
    assert [e["kind"] for e in report["events"]] == [kind] * 3
    assert report["step"] == 3 and report["epoch"] == 1 and report["lr"] > 0
    assert len(report["recent_losses"]) == 3 and report["prediction_histogram"]["n"] == 64
    assert kind in report["reason"]
    metrics = read_json(tmp_path / METRICS_FILE)
    assert metrics["status"] == "collapsed" and metrics["epochs_run"] == 0 and metrics["best_epoch"] is None
    assert all(v is None for v in metrics["test"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # NaN steps were skipped, never applied
    if kind == "nonfinite_loss":
        assert report["prediction_histogram"]["nonfinite"] == 64
        assert report["recent_losses"] == [None, None, None]  # NaN written as null, never bare NaN
    if kind == "exploding_grad":
        assert min(report["recent_grad_norms"]) > 1e4


def test_constant_predictions_collapse_after_three_validations(tmp_path):
    result = run(ConstantModel(), tmp_path, epochs=10)
    assert result.status == "collapsed"
    report = read_json(tmp_path / COLLAPSE_FILE)
    assert [e["kind"] for e in report["events"]] == ["constant_predictions"] * 3
    assert report["events"][-1]["value"]["std"] < 1e-4
    hist = report["prediction_histogram"]
    assert sum(hist["counts"]) == 64 and max(hist["counts"]) == 64  # every prediction in one bin
    metrics = read_json(tmp_path / METRICS_FILE)
    # Three full epochs ran and a best epoch exists, so the metrics come from its weights.
    assert metrics["status"] == "collapsed" and metrics["epochs_run"] == 3 and metrics["best_epoch"] is not None
    assert metrics["test"]["accuracy"] is not None and metrics["test"]["roc_auc"] == 0.5


def test_a_clean_step_resets_the_streak():
    det = CollapseDetector(CollapseConfig(patience=3))
    for step, loss in enumerate([math.nan, math.nan, 0.5, math.nan, math.nan, 0.4], 1):
        det.observe_step(step, 1, 1e-3, loss, 1.0)
    assert not det.collapsed and det.total_events == 4
    det.observe_step(7, 1, 1e-3, math.inf, 1.0)
    det.observe_step(8, 1, 1e-3, 0.3, 5e4)  # another kind still extends the streak
    det.observe_step(9, 1, 1e-3, 0.3, 0.0)
    assert det.collapsed and "zero_grad" in det.reason


def test_scaler_skipped_step_is_not_an_event_but_nonfinite_grad_without_scaler_is():
    det = CollapseDetector()
    assert det.observe_step(1, 1, 1e-3, 0.7, None) is None  # not measured: the GradScaler handled it
    assert det.observe_step(2, 1, 1e-3, 0.7, math.inf) == "nonfinite_grad"


def test_single_class_flag_and_state_roundtrip():
    probs = np.linspace(0.1, 0.4, 50)  # varied, but all below 0.5
    assert CollapseDetector().observe_validation(1, 1, 1e-3, probs) is None
    strict = CollapseDetector(CollapseConfig(flag_single_class=True))
    assert strict.observe_validation(1, 1, 1e-3, probs) == "constant_predictions"
    clone = CollapseDetector(strict.cfg)
    clone.load_state_dict(strict.state_dict())
    assert clone.report() == strict.report() and clone.val_streak == 1


def test_disabled_detector_never_collapses():
    det = CollapseDetector(CollapseConfig(enabled=False))
    for step in range(10):
        det.observe_step(step, 1, 1e-3, math.nan, math.nan)
    assert not det.collapsed


def test_prediction_histogram_counts_nonfinite():
    hist = prediction_histogram(np.array([0.05, 0.95, 0.96, np.nan]), bins=10)
    assert hist["counts"][0] == 1 and hist["counts"][9] == 2 and hist["nonfinite"] == 1 and hist["n"] == 4
