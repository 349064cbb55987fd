"""LR range test: sweep, suggestion, state left untouched, output files."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from streamguard.io import dumps_strict, loads_strict, read_json
from streamguard.train.losses import make_loss
from streamguard.train.lr_finder import LRFinderResult, find_lr, save_lr_outputs, suggest_lr
from streamguard.train.optim import ParamGroupSpec, build_optimizer
from streamguard.train.seeding import seed_everything

from .helpers import MLP, toy_loaders


def _sweep(model=None, lr_range=(1e-3, 1e-1), **kw):
    seed_everything(0)
    model = model or MLP(dropout=0.0)
    loader = toy_loaders(0, n_train=256, batch_size=32)["train"]
    return model, loader, find_lr(model, loader, make_loss("bce"), lr_range, device="cpu", **kw)


def test_sweep_covers_the_range_and_suggests_inside_it():
    _, _, result = _sweep()
    assert result.stop_reason == "completed" and len(result.lrs) == 100
    assert result.lrs[0] == pytest.approx(1e-7) and result.lrs[-1] == pytest.approx(1.0)
    ratios = np.diff(np.log(result.lrs))
    assert np.allclose(ratios, ratios[0])  # exponential
    assert 1e-3 <= result.lr <= 1e-1 and result.confidence == "high"
    assert min(result.smoothed) < result.smoothed[0]
    assert result.settings["num_steps"] == 100 and result.settings["amp"] == "fp32"


def test_model_optimizer_and_rng_are_untouched():
    seed_everything(0)
    model = MLP(dropout=0.2)
    model.eval()
    specs = [ParamGroupSpec("body", model.net[:2], 0.1), ParamGroupSpec("head", model.net[4], 1.0)]
    optimizer, _ = build_optimizer(model, 1e-3, 0.01, specs)
    loader = toy_loaders(0, n_train=64, batch_size=16)["train"]
    batch = next(iter(loader))
    make_loss("bce")(model(batch), batch["labels"]).backward()
    optimizer.step()  # give the optimizer some state
    optimizer.zero_grad()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = {k: {n: t.clone() for n, t in v.items()} for k, v in optimizer.state_dict()["state"].items()}
    lrs_before = [g["lr"] for g in optimizer.param_groups]
    gen_state = loader.generator.get_state()
    torch_state = torch.get_rng_state()

    result = find_lr(model, loader, make_loss("bce"), (1e-4, 1e-2), device="cpu", optimizer=optimizer, num_steps=30,
                     skip_start=2, skip_end=2)

    assert len(result.lrs) > 5
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    after = optimizer.state_dict()["state"]
    assert all(torch.equal(opt_state[k][n], after[k][n]) for k in opt_state for n in opt_state[k])
    assert [g["lr"] for g in optimizer.param_groups] == lrs_before
    assert torch.equal(loader.generator.get_state(), gen_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert not model.training


class NoNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, batch):
        return self.net(batch["x"]).squeeze(-1)


def test_stops_when_the_loss_diverges():
    _, _, result = _sweep(NoNorm(), end_lr=100.0, max_grad_norm=100.0)
    assert result.stop_reason == "diverged" and len(result.lrs) < 100
    assert result.smoothed[-1] > 4 * min(result.smoothed[:-1])


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)

    def forward(self, batch):
        return self.lin(batch["x"]).squeeze(-1) / 0.0 * 0.0


def test_nan_loss_stops_and_falls_back_to_the_geometric_mean():
    _, _, result = _sweep(NaNNet(), lr_range=(1e-4, 1e-2))
    assert result.stop_reason == "nonfinite" and len(result.lrs) == 1
    assert result.confidence == "fallback" and result.lr == pytest.approx(1e-3)
    assert result.raw_lr is None


def _curve(center):
    lrs = np.logspace(-7, 0, 100)
    loss = 1.0 - 0.5 / (1 + np.exp(-(np.log10(lrs) - np.log10(center)) * 3))  # steepest at `center`
    return lrs, loss


def test_suggestion_rules_on_synthetic_curves():
    lrs, loss = _curve(3e-4)
    lr, raw, conf, _ = suggest_lr(lrs, loss, (1e-4, 1e-3))
    assert conf == "high" and lr == raw and 2e-4 < lr < 5e-4
    lr, raw, conf, reason = suggest_lr(lrs, loss, (1e-4, 2e-4))  # the steep part is just above the range
    assert conf == "low" and lr == 2e-4 and raw > 2e-4 and "clamped" in reason
    lr, raw, conf, reason = suggest_lr(lrs, loss, (1e-6, 5e-6))  # ... and over a decade above it
    assert conf == "low" and lr == pytest.approx(math.sqrt(1e-6 * 5e-6)) and raw > 5e-5 and "decade" in reason
    lr, raw, conf, reason = suggest_lr(lrs, loss, (5e-3, 1e-2))  # over a decade below: not clamped either
    assert conf == "low" and lr == pytest.approx(math.sqrt(5e-3 * 1e-2)) and raw < 5e-4 and "decade" in reason
    lr, raw, conf, reason = suggest_lr(lrs, loss, (1e-3, 2e-3))  # within a decade below: the lower end
    assert conf == "low" and lr == 1e-3 and raw < 1e-3 and "clamped" in reason
    flat = np.full(100, 0.7)
    assert suggest_lr(lrs, flat, (1e-5, 5e-5))[2] == "fallback"
    lr, raw, conf, _ = suggest_lr(lrs[:12], loss[:12], (1e-4, 1e-2))  # too short after trimming
    assert conf == "fallback" and lr == pytest.approx(1e-3) and raw is None
    weak = 0.7 - 0.01 * (1 - loss)  # the same shape, but the loss falls by under 1 %
    lr, raw, conf, reason = suggest_lr(lrs, weak, (1e-4, 1e-3))
    assert conf == "low" and lr == pytest.approx(math.sqrt(1e-4 * 1e-3)) and 2e-4 < raw < 5e-4 and "weak descent" in reason
    rising = np.linspace(0.5, 0.9, 100)
    assert suggest_lr(lrs, rising, (1e-4, 1e-3))[2] == "fallback"


def test_suggestion_finds_a_known_optimum_despite_a_noisy_start():
    """The curve's steepest descent lies at 1e-3; the first 20 points carry noise as large as the
    whole descent, which the previous rule (steepest slope of the running average) picked at about
    the 13th point of every quick sweep, just after the trimmed ones."""
    lrs, loss = _curve(1e-3)
    rng = np.random.default_rng(0)
    noisy = loss.copy()
    noisy[:20] += rng.normal(0.0, 0.15, 20)
    noisy[90:] += np.linspace(0.0, 3.0, 10)  # divergence at the end
    lr, raw, conf, reason = suggest_lr(lrs, noisy, (1e-7, 1.0))
    assert conf == "high" and 5e-4 < raw < 2e-3, reason
    # A flat curve with the same noise has no valley: no confident suggestion comes out of noise.
    flat = np.full(100, 0.69) + np.concatenate([rng.normal(0.0, 0.15, 20), np.zeros(80)])
    assert suggest_lr(lrs, flat, (1e-7, 1.0))[2] in ("low", "fallback")


def test_centered_smooth_has_no_lag_and_keeps_the_ends():
    from streamguard.train.lr_finder import centered_smooth
    ramp = np.arange(10, dtype=float)
    assert np.allclose(centered_smooth(ramp, 3)[1:-1], ramp[1:-1])  # a line is its own centred average
    assert centered_smooth(ramp, 3)[0] == pytest.approx(0.5) and centered_smooth(ramp, 1).tolist() == ramp.tolist()


def test_outputs_and_json_roundtrip(tmp_path):
    _, _, result = _sweep(NoNorm(), end_lr=100.0, max_grad_norm=100.0)
    result.losses[-1] = math.nan  # as a NaN-stopped curve would end
    paths = save_lr_outputs(result, tmp_path, extra={"model": "toy", "cache": {"hit": False}})
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.lrs) and rows[-1]["loss"] == ""
    body = read_json(paths["json"])
    assert body["lr"] == result.lr and body["confidence"] == result.confidence and body["model"] == "toy"
    back = LRFinderResult.from_dict(loads_strict(dumps_strict(result.to_dict())))
    assert back.lrs == result.lrs and math.isnan(back.losses[-1]) and back.lr_range == result.lr_range
