"""AMP settings per device and the GradScaler wrapper."""
from __future__ import annotations

import pytest
import torch

from streamguard.errors import ConfigError
from streamguard.train import amp as amp_mod
from streamguard.train.amp import Amp, AmpSettings, resolve_amp


def test_cpu_runs_full_precision_unless_bf16_is_asked():
    auto = resolve_amp("cpu")
    assert not auto.enabled and auto.name == "fp32" and not auto.use_scaler
    bf16 = resolve_amp("cpu", "bf16")
    assert bf16.dtype is torch.bfloat16 and not bf16.use_scaler
    assert resolve_amp("cpu", "fp16").name == "fp32"  # fallback
    assert resolve_amp("cpu", "off").name == "fp32"
    with pytest.raises(ConfigError, match="amp must be one of"):
        resolve_amp("cpu", "int8")


def test_bf16_autocast_on_cpu_changes_matmul_dtype():
    amp = Amp(resolve_amp("cpu", "bf16"))
    a = torch.randn(4, 4)
    with amp.autocast():
        assert (a @ a).dtype is torch.bfloat16
    with Amp(resolve_amp("cpu")).autocast():
        assert (a @ a).dtype is torch.float32


@pytest.mark.parametrize("bf16, expected, scaler", [(True, torch.bfloat16, False), (False, torch.float16, True)])
def test_cuda_auto_picks_bf16_where_supported(monkeypatch, bf16, expected, scaler):
    monkeypatch.setattr(amp_mod, "_cuda_bf16_supported", lambda: bf16)
    settings = resolve_amp(torch.device("cuda"), "auto")
    assert settings.dtype is expected and settings.use_scaler is scaler
    requested = resolve_amp(torch.device("cuda"), "bf16")
    assert requested.dtype is expected  # bf16 asked on a GPU without it falls back to fp16 + scaler


def test_disabled_scaler_is_a_plain_step_with_nothing_to_checkpoint():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    amp = Amp(resolve_amp("cpu"))
    loss = model(torch.ones(1, 2)).sum()
    amp.backward(loss)
    grad = model.weight.grad.clone()
    amp.unscale_(opt)
    assert torch.equal(model.weight.grad, grad)  # nothing was scaled, so nothing is unscaled
    before = model.weight.detach().clone()
    amp.step(opt)
    assert amp.update() is False
    torch.testing.assert_close(model.weight, before - 0.1 * grad)  # exactly SGD's step
    assert amp.state_dict() == {}


def _scaled_step(amp, grad_value):
    """One scaled step of a 1-parameter model whose gradient is `grad_value` before scaling."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    amp.backward((param * grad_value).sum())
    amp.unscale_(opt)
    amp.step(opt)
    return param, amp.update()


def test_enabled_scaler_skips_overflow_steps_and_its_state_roundtrips():
    # The CPU GradScaler behaves as the CUDA one does under fp16, so this runs without a GPU.
    settings = AmpSettings("cpu", None, True, "test")
    amp = Amp(settings)
    initial = amp.scaler.get_scale()
    param, skipped = _scaled_step(amp, float("inf"))
    assert skipped is True and param.item() == 0.0  # the overflowing step was not applied
    assert amp.scaler.get_scale() == initial * 0.5
    param, skipped = _scaled_step(amp, 2.0)
    assert skipped is False and param.item() == pytest.approx(-2.0)  # unscaled before the step
    state = amp.state_dict()
    assert state["scale"] == initial * 0.5 and state["_growth_tracker"] == 1

    restored = Amp(settings)
    restored.load_state_dict(state)
    assert restored.scaler.get_scale() == initial * 0.5 and restored.state_dict() == state
    # An empty state (a run without scaler) leaves a fresh scaler as it is.
    fresh = Amp(settings)
    fresh.load_state_dict({})
    assert fresh.scaler.get_scale() == initial
