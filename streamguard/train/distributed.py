"""The process group of a multi-process run (torchrun), in one place, so the engine stays a loop.

Public API
----------
- ``launched() -> bool``: the environment is torchrun's (``WORLD_SIZE`` > 1).
- ``launcher_argv(launcher, argv) -> list[str] | None``: the command that runs ``argv`` (a script
  and its arguments) under ``train.launcher`` (``torchrun ...`` runs as ``python -m
  torch.distributed.run ...`` of this interpreter); None for ``python`` or when already launched.
- ``setup(mode="auto", timeout_s=1800) -> DistContext``: with ``mode`` auto and a torchrun
  environment, joins the process group (NCCL on CUDA, gloo on CPU, ``env://`` rendezvous, so
  ``--nnodes`` and ``--rdzv-backend=c10d`` work unchanged), pins the local GPU, turns file output
  off on every rank but 0 (``io.set_write_enabled``) and makes SIGTERM (how torchrun stops the
  survivors of a failed rank) raise ``SystemExit``, so a write in progress removes its temp file.
  ``mode`` off refuses a multi-process launch (each process would train the whole run alone).
  Idempotent; without torchrun it is a no-op returning the single-process context.
- ``current() -> DistContext``: the context of this process (``setup("auto")`` on first use).
- ``DistContext``: ``world_size``, ``rank``, ``local_rank``, ``backend``; ``enabled``,
  ``is_main``, ``device_for(device)`` (this rank's GPU), ``describe()`` (training_metadata.json).
- ``wrap(model, device)``: ``DistributedDataParallel`` over ``model`` (the engine keeps the plain
  module for evaluation and checkpoints, so state dicts never carry ``module.`` prefixes).
- ``all_reduce_sum(tensor)``, ``barrier()``, ``broadcast_object(obj)`` (rank 0's object on every rank),
  ``on_main(fn, *args, **kwargs)``: ``fn`` runs on rank 0 only and every rank returns its result or
  raises its exception (file reads and clean-ups that must happen once, and agree);
  ``ensure_same(value, what)``: ``RuntimeError`` on every rank unless all ranks hold ``value``.
- ``session(mode, timeout_s)``: context manager for entry points: ``setup`` and, after a clean
  exit, ``teardown``; after an error the group is left to the process exit (a collective-free
  teardown cannot be promised once a peer is gone).
- ``teardown()``: destroy the process group.

Failure: a collective that waits longer than ``timeout_s`` for a peer raises on the waiting rank
(the process group timeout); under torchrun a rank that exits non-zero makes the agent stop the
others within a second (``--monitor-interval`` 0.1 s, SIGTERM).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import inspect
import logging
import os
import pickle
import shlex
import signal
import sys
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from ..errors import ConfigError
from ..io import set_write_enabled

log = logging.getLogger("streamguard.train.distributed")

MODES = ("auto", "off")
_state: dict[str, Any] = {"ctx": None}


@dataclasses.dataclass(frozen=True)
class DistContext:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None  # None: no process group (one process)

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device_for(self, device: torch.device) -> torch.device:
        """This rank's device: the local GPU for a CUDA run, else ``device`` unchanged."""
        if self.enabled and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}") from None


def launched() -> bool:
    return _env_int("WORLD_SIZE", 1) > 1


def launcher_argv(launcher: str, argv: list[str]) -> list[str] | None:
    words = shlex.split(launcher)
    if not words or words == ["python"] or "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ:
        return None
    if words[0] == "torchrun":
        words = [sys.executable, "-m", "torch.distributed.run", *words[1:]]
    return [*words, *argv]


def _raise_on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler convention
    raise SystemExit(128 + signum)


def setup(mode: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    if _state["ctx"] is not None:
        return _state["ctx"]
    if mode not in MODES:
        raise ConfigError(f"train.distributed must be one of {', '.join(MODES)}, got {mode!r}")
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        _state["ctx"] = DistContext()
        return _state["ctx"]
    if mode == "off":
        raise ConfigError(f"train.distributed is off but this process was launched as one of {world} "
                          "(WORLD_SIZE); run it with python, or set train.distributed: auto")
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", timeout=_dt.timedelta(seconds=timeout_s))
    ctx = DistContext(dist.get_world_size(), dist.get_rank(), local_rank, backend)
    set_write_enabled(ctx.is_main)
    with contextlib.suppress(ValueError):  # not the main thread: keep the default handler
        signal.signal(signal.SIGTERM, _raise_on_sigterm)
    log.info("rank %d of %d (local rank %d, %s, timeout %.0f s)", ctx.rank, ctx.world_size, local_rank, backend,
             timeout_s)
    _state["ctx"] = ctx
    return ctx


def current() -> DistContext:
    return _state["ctx"] if _state["ctx"] is not None else setup()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    if _state["ctx"] is not None and _state["ctx"].enabled:
        set_write_enabled(True)
    _state["ctx"] = None


@contextlib.contextmanager
def session(mode: str = "auto", timeout_s: float = 1800.0) -> Iterator[DistContext]:
    ctx = setup(mode, timeout_s)
    yield ctx  # an exception propagates past the teardown: the process exit closes the group
    teardown()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # Buffers are not broadcast each forward: only rank 0's model is evaluated and checkpointed.
    # Every built-in kind gives every parameter a gradient, so DDP need not search the graph for
    # unused ones each step (a model that leaves some idle fails with DDP's own message saying so).
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    no_buffer_sync = {"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None, **no_buffer_sync)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place; every rank ends with the same values."""
    if current().enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def broadcast_object(obj: Any = None) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; tensors travel through the CPU)."""
    if not current().enabled:
        return obj
    box = [obj if current().is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if not current().enabled:
        return fn(*args, **kwargs)
    outcome: tuple[bool, Any] | None = None
    if current().is_main:
        try:
            outcome = (True, fn(*args, **kwargs))
        except Exception as exc:  # every rank raises it, so they leave the same code path together
            outcome = (False, exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}"))
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value
    return value


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any pickling failure means: send a plain copy
        return False
    return True


def ensure_same(value: Any, what: str) -> None:
    if not current().enabled:
        return
    seen: list[Any] = [None] * current().world_size
    dist.all_gather_object(seen, value)
    if any(v != seen[0] for v in seen):
        raise RuntimeError(f"ranks disagree on {what}: {seen}")
