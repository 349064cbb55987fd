"""Hardware profiles, memory-following batch sizes and the training_config.json override."""
from __future__ import annotations

import json

import pytest

from streamguard.errors import ConfigError
from streamguard.kinds import get_kind, kind_names
from streamguard.train.hardware import DeviceInfo, detect_device, match_profile, resolve_hardware, split_batch


def _resolve(kind: str, **kwargs):
    """resolve_hardware as the runs call it: with the kind's batch limits and the known model sections."""
    return resolve_hardware(kind, batch_limits=get_kind(kind).batch_limits, model_sections=kind_names(), **kwargs)

H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", 79.6, True)
A100_40 = DeviceInfo("cuda", "NVIDIA A100-SXM4-40GB", 39.4, True)
T4 = DeviceInfo("cuda", "Tesla T4", 15.0, False)
V100 = DeviceInfo("cuda", "Tesla V100-SXM2-16GB", 15.8, False)
L4 = DeviceInfo("cuda", "NVIDIA L4", 22.5, True)
CPU = DeviceInfo("cpu", "x86_64", 16.0, False)


@pytest.mark.parametrize("info, profile, amp", [
    (H100, "h100", "bf16"), (A100_40, "a100", "bf16"), (T4, "t4", "fp16"), (V100, "v100", "fp16"),
    (L4, "l4", "bf16"), (CPU, "cpu", "fp32"), (DeviceInfo("cuda", "Some New GPU", 48.0, True), "cuda", "auto"),
    (DeviceInfo("mps", "Apple MPS", None), "mps", "fp32"),
])
def test_profiles_match_devices(info, profile, amp):
    assert match_profile(info).name == profile
    cfg = _resolve("transformer", device_info=info)
    assert cfg.profile == profile and cfg.amp == amp
    assert cfg.sources["amp"] == f"auto:{profile}"


def test_batch_follows_memory_and_accumulation_keeps_the_effective_batch():
    big = _resolve("transformer", requested_batch=64, device_info=H100)
    assert (big.batch_size, big.grad_accum, big.effective_batch) == (64, 1, 64)
    half = _resolve("transformer", requested_batch=64, device_info=A100_40)  # 40 of 80 GB -> limit 32
    assert (half.batch_size, half.grad_accum, half.effective_batch) == (32, 2, 64)
    small = _resolve("transformer", requested_batch=64, device_info=T4)  # limit 16 (15 GB ~ 16 GB)
    assert (small.batch_size, small.grad_accum, small.effective_batch) == (16, 4, 64)
    tiny = _resolve("transformer", requested_batch=64, device_info=DeviceInfo("cuda", "Tesla T4", 7.5))
    assert (tiny.batch_size, tiny.grad_accum) == (8, 8)  # half the memory, half the batch
    assert small.sources["grad_accum"].startswith("derived")


def test_split_batch_prefers_exact_splits():
    assert split_batch(64, 24) == (16, 4)
    assert split_batch(30, 8) == (6, 5)
    assert split_batch(8, 32) == (8, 1)
    assert split_batch(13, 4) == (1, 13)  # a prime effective batch still splits exactly


def test_override_file_wins_and_is_recorded(tmp_path):
    path = tmp_path / "training_config.json"
    path.write_text(json.dumps({"num_workers": 2, "amp": "fp16", "transformer": {"batch_size": 8}}))
    cfg = _resolve("transformer", requested_batch=32, device_info=H100, override_path=path,
                           profile_values={"num_workers": 6, "amp": "bf16"}, profile_sources={"amp": "params.yaml"})
    assert (cfg.batch_size, cfg.grad_accum, cfg.num_workers, cfg.amp) == (8, 4, 2, "fp16")
    assert cfg.sources["batch_size"] == f"file:{path}" and cfg.sources["num_workers"] == f"file:{path}"
    gnn = _resolve("gnn", requested_batch=32, device_info=H100, override_path=path,
                           profile_values={"num_workers": 6, "amp": "bf16"}, profile_sources={"amp": "params.yaml"})
    assert gnn.batch_size == 32  # the transformer section does not apply to the GNN
    assert gnn.amp == "fp16" and gnn.num_workers == 2


def test_profile_values_beat_auto_and_auto_amp_means_unset(tmp_path):
    cfg = _resolve("gnn", device_info=T4, profile_values={"num_workers": 1, "amp": "auto"},
                           override_path=tmp_path / "absent.json")
    assert cfg.num_workers == 1 and cfg.sources["num_workers"] == "profile"
    assert cfg.amp == "fp16" and cfg.sources["amp"] == "auto:t4"
    explicit = _resolve("gnn", requested_batch=64, device_info=T4,
                                profile_values={"batch_size": 16, "grad_accum": 2})
    assert (explicit.batch_size, explicit.grad_accum, explicit.effective_batch) == (16, 2, 32)


@pytest.mark.parametrize("body, message", [
    ({"batch_sise": 8}, "field 'batch_sise' is unknown"),
    ({"gnn": {"batch_size": "big"}}, "field 'gnn.batch_size' must be int"),
    ({"batch_size": 0}, "field 'batch_size' is out of range"),
    ({"amp": "fp8"}, "field 'amp' must be one of"),
    ({"pin_memory": 1}, "field 'pin_memory' must be bool"),
])
def test_bad_override_file_names_file_and_field(tmp_path, body, message):
    path = tmp_path / "training_config.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ConfigError, match=message) as err:
        _resolve("gnn", device_info=CPU, override_path=path)
    assert str(path) in str(err.value)


def test_unknown_model_kind_and_override_section(tmp_path):
    with pytest.raises(ConfigError, match="unknown model kind 'lstm'; known kinds: transformer, gnn, fusion"):
        get_kind("lstm")
    path = tmp_path / "training_config.json"
    path.write_text(json.dumps({"lstm": {"batch_size": 8}}))
    with pytest.raises(ConfigError, match="field 'lstm' is not a model section"):
        _resolve("gnn", device_info=CPU, override_path=path)


def test_a_kind_without_limits_runs_its_requested_batch_in_one_step():
    cfg = resolve_hardware("toy", requested_batch=48, device_info=T4)
    assert (cfg.batch_size, cfg.grad_accum) == (48, 1)


def test_detection():
    info = detect_device()
    assert info.kind in ("cpu", "cuda", "mps") and info.name
    cfg = _resolve("fusion", requested_batch=32)
    assert cfg.to_dict()["sources"]["batch_size"].startswith("auto:")
