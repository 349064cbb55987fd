"""AMP settings per device and the GradScaler wrapper."""
from __future__ import annotations

import pytest
import torch

from streamguard.errors import ConfigError
from streamguard.train import amp as amp_mod
from streamguard.train.amp import Amp, resolve_amp


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


def test_disabled_scaler_is_a_plain_step_and_state_roundtrips():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    amp = Amp(resolve_amp("cpu"))
    loss = model(torch.ones(1, 2)).sum()
    amp.backward(loss)
    amp.unscale_(opt)
    before = model.weight.detach().clone()
    amp.step(opt)
    assert amp.update() is False
    assert not torch.equal(before, model.weight)
    other = Amp(resolve_amp("cpu"))
    other.load_state_dict(amp.state_dict())
    assert other.state_dict() == amp.state_dict()
