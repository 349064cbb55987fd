"""Adaptive hardware configuration: batch size, gradient accumulation, AMP dtype and workers.

Public API
----------
- ``detect_device() -> DeviceInfo(kind, name, memory_gb, bf16)``: CUDA (first GPU), MPS or CPU.
- ``PROFILES``: safe defaults for H100, A100, L4, V100, T4, other CUDA GPUs, MPS and CPU.
- ``match_profile(info) -> HardwareProfile``.
- ``resolve_hardware(model_type, requested_batch=None, profile_values=None, override_path=None,
  device_info=None, profile_sources=None, batch_limits=None, model_sections=None) -> HardwareConfig``
  (a dataclass with ``.sources``). ``model_type`` is only a name here: the caller passes the kind's
  per-step ``batch_limits`` (hardware profile name -> batch) and the known ``model_sections`` of the
  override file, so this module knows nothing of particular models.

Precedence, for every value: ``training_config.json`` (``override_path``, when the file exists) >
``profile_values`` (explicit values from the config profile / params.yaml; ``None`` and
``amp: "auto"`` mean "not set") > the detected hardware profile. Each value's source is recorded
as ``file:<path>``, the label in ``profile_sources`` (default ``profile``) or ``auto:<profile>``.

Batch size follows memory, the effective batch stays: ``requested_batch`` is the effective batch
the config asks for (batch size x accumulation). The per-step batch is capped by the model's
limit for the profile (``batch_limits``; none given or none for the profile: no cap), scaled by the GPU's memory relative to the profile's reference memory
(with 10 % slack, rounded down to a power of two), and ``grad_accum`` makes up the rest, preferring an exact split
(64 on a 24-sample limit -> 16 x 4). An explicit ``batch_size`` (file or profile) replaces the
profile's limit; an explicit ``grad_accum`` is used as is (then batch_size x grad_accum may differ
from ``requested_batch``, which is logged).

``training_config.json``: keys ``batch_size``, ``grad_accum``, ``amp``, ``num_workers``,
``pin_memory`` at the top level (all models) and/or in sections named after model types
(``{"transformer": {"batch_size": 8}}``), the section winning; ``model_sections`` lists the allowed
section names. Unknown keys or bad types raise
``ConfigError`` naming the file and key.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import platform
from typing import Any, Mapping

import torch

from ..errors import ConfigError
from ..io import read_json
from .amp import AMP_MODES

log = logging.getLogger("streamguard.train.hardware")

_FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "batch_size": int, "grad_accum": int, "amp": str, "num_workers": int, "pin_memory": bool}


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "mps" | "cpu"
    name: str
    memory_gb: float | None
    bf16: bool = False


@dataclasses.dataclass(frozen=True)
class HardwareProfile:
    name: str
    match: tuple[str, ...]  # substrings of the CUDA device name
    reference_memory_gb: float | None  # the models' batch limits are for this much memory
    amp: str
    num_workers: int
    pin_memory: bool


# Per-step batch limits per profile are declared by each model kind (streamguard.kinds).
PROFILES: dict[str, HardwareProfile] = {p.name: p for p in (
    HardwareProfile("h100", ("H100",), 80, "bf16", 8, True),
    HardwareProfile("a100", ("A100",), 80, "bf16", 8, True),
    HardwareProfile("l4", ("L4",), 24, "bf16", 4, True),
    HardwareProfile("v100", ("V100",), 16, "fp16", 4, True),
    HardwareProfile("t4", ("T4",), 16, "fp16", 4, True),
    HardwareProfile("cuda", (), 16, "auto", 4, True),
    HardwareProfile("mps", (), None, "fp32", 0, False),
    # CPU memory is rarely the limit; workers stay 0 (no fork/IPC cost for in-memory tensors).
    HardwareProfile("cpu", (), None, "fp32", 0, False),
)}


@dataclasses.dataclass(frozen=True)
class HardwareConfig:
    model_type: str
    device: str
    device_name: str
    memory_gb: float | None
    profile: str
    amp: str
    batch_size: int  # per forward/backward
    grad_accum: int
    effective_batch: int
    num_workers: int
    pin_memory: bool
    sources: Mapping[str, str]  # value name -> "file:<path>" | "profile" (or given label) | "auto:<profile>"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def detect_device() -> DeviceInfo:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo("cuda", props.name, round(props.total_memory / 2**30, 1), torch.cuda.is_bf16_supported())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return DeviceInfo("mps", "Apple MPS", None, False)
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return DeviceInfo("cpu", platform.processor() or platform.machine() or "cpu", memory, False)


def match_profile(info: DeviceInfo) -> HardwareProfile:
    if info.kind != "cuda":
        return PROFILES["mps" if info.kind == "mps" else "cpu"]
    upper = info.name.upper()
    for profile in PROFILES.values():
        if any(m in upper for m in profile.match):
            return profile
    return PROFILES["cuda"]


def _memory_scaled(limit: int, profile: HardwareProfile, memory_gb: float | None) -> int:
    if profile.reference_memory_gb is None or not memory_gb:
        return limit
    # 10 % slack: a card reports a little less than its nominal size (an "80GB" H100 shows 79.6 GiB).
    scaled = 1.1 * limit * memory_gb / profile.reference_memory_gb
    return max(1, 2 ** int(math.floor(math.log2(scaled)))) if scaled >= 1 else 1


def split_batch(effective: int, limit: int) -> tuple[int, int]:
    """(batch_size, grad_accum) with batch_size <= limit and batch_size * grad_accum == effective when possible."""
    if effective <= limit:
        return effective, 1
    for accum in range(math.ceil(effective / limit), effective + 1):
        if effective % accum == 0 and effective // accum <= limit:
            return effective // accum, accum
    accum = math.ceil(effective / limit)  # unreachable in practice (accum == effective always divides)
    return math.ceil(effective / accum), accum


def _read_override(path: pathlib.Path, model_type: str, model_sections: tuple[str, ...] | None) -> dict[str, Any]:
    try:
        data = read_json(path)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    sections = tuple(model_sections) if model_sections is not None else tuple(k for k, v in data.items() if isinstance(v, dict))
    for key, body in data.items():
        if isinstance(body, dict) and key not in sections:
            raise ConfigError(f"{path}: field '{key}' is not a model section; known: {', '.join(sections) or 'none'}")
    values: dict[str, Any] = {}
    for scope, body in [("", {k: v for k, v in data.items() if k not in sections}),
                        (model_type + ".", data.get(model_type, {}))]:
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: field '{scope.rstrip('.')}' must be an object")
        for key, value in body.items():
            field = scope + key
            if key not in _FILE_KEYS:
                raise ConfigError(f"{path}: field '{field}' is unknown; allowed: "
                                  f"{', '.join(_FILE_KEYS)} (top level or per model: {', '.join(sections)})")
            expected = _FILE_KEYS[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: field '{field}' must be {expected.__name__}, got {value!r}")
            if expected is int and value < (0 if key == "num_workers" else 1):
                raise ConfigError(f"{path}: field '{field}' is out of range: {value}")
            if key == "amp" and value not in AMP_MODES:
                raise ConfigError(f"{path}: field '{field}' must be one of {', '.join(AMP_MODES)}, got {value!r}")
            values[key] = value
    return values


def resolve_hardware(model_type: str, requested_batch: int | None = None,
                     profile_values: Mapping[str, Any] | None = None,
                     override_path: str | os.PathLike | None = None, device_info: DeviceInfo | None = None,
                     profile_sources: Mapping[str, str] | None = None, batch_limits: Mapping[str, int] | None = None,
                     model_sections: tuple[str, ...] | None = None) -> HardwareConfig:
    info = device_info or detect_device()
    profile = match_profile(info)
    auto = f"auto:{profile.name}"
    values: dict[str, Any] = {"amp": profile.amp, "num_workers": profile.num_workers,
                              "pin_memory": profile.pin_memory}
    sources: dict[str, str] = {k: auto for k in values}
    declared = (batch_limits or {}).get(profile.name)
    # No limit declared for this hardware: the requested batch in one step.
    limit = max(1, int(requested_batch or 1)) if declared is None else _memory_scaled(declared, profile, info.memory_gb)

    explicit: dict[str, Any] = {}
    for key, value in (profile_values or {}).items():
        if key not in _FILE_KEYS:
            raise ConfigError(f"hardware value '{key}' is unknown; allowed: {', '.join(_FILE_KEYS)}")
        if value is None or (key == "amp" and value == "auto"):
            continue
        explicit[key] = value
        sources[key] = (profile_sources or {}).get(key, "profile")
    if override_path is not None and pathlib.Path(override_path).is_file():
        for key, value in _read_override(pathlib.Path(override_path), model_type, model_sections).items():
            explicit[key] = value
            sources[key] = f"file:{override_path}"
    values.update({k: v for k, v in explicit.items() if k in ("amp", "num_workers", "pin_memory")})

    if "batch_size" in explicit:
        batch = int(explicit["batch_size"])
    else:
        batch = limit
        sources["batch_size"] = f"{auto} (limit {limit} for {info.memory_gb or '?'} GB)"
    if requested_batch is not None and "grad_accum" not in explicit:
        # An explicit batch_size is a memory limit like the profile's: the effective batch still rules.
        batch, accum = split_batch(int(requested_batch), batch)
        sources["grad_accum"] = f"derived: effective batch {requested_batch}"
    else:
        accum = int(explicit.get("grad_accum", 1))
        sources.setdefault("grad_accum", "default")
    if requested_batch is not None and batch * accum != requested_batch:
        log.warning("%s: effective batch %d x %d = %d differs from the requested %d", model_type, batch, accum,
                    batch * accum, requested_batch)

    config = HardwareConfig(model_type, info.kind, info.name, info.memory_gb, profile.name, values["amp"], batch,
                            accum, batch * accum, values["num_workers"], values["pin_memory"], sources)
    for key in ("amp", "batch_size", "grad_accum", "num_workers", "pin_memory"):
        log.info("hardware %s: %s = %s (%s)", model_type, key, getattr(config, key), sources[key])
    return config
