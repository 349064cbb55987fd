"""Safe file output: strict JSON, atomic writes, checkpoints loaded with weights_only=True.

Every file the project writes goes through `atomic_write`, the one place a later
distributed run can restrict to rank 0 (see `set_write_enabled`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import io
import json
import logging
import math
import os
import pathlib
import pickle
import re
import tempfile
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .errors import CheckpointError, CorruptFileError, SerializationError, StreamGuardError, WriteError

log = logging.getLogger("streamguard.io")

# NaN/inf policy: strict JSON has no NaN, so non-finite floats become null and the
# path of each replaced value is reported back to callers that ask for it.
_WRITE_ENABLED = True
# mkstemp creates 0600 files; give outputs the mode a plain open() would (read once, at import).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def set_write_enabled(enabled: bool) -> None:
    """Turn file output on or off for this process (off on non-zero ranks of a distributed run)."""
    global _WRITE_ENABLED
    _WRITE_ENABLED = enabled


def _key_path(parent: str, key: object) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def safe_jsonify(value: Any, path: str = "", nonfinite: list[str] | None = None) -> Any:
    """Convert `value` into plain JSON types, recursively.

    Tensors are detached and moved to CPU, NumPy values become Python values, paths/devices/dtypes
    become strings, dataclasses become dicts. Non-finite floats become None (their key paths are
    appended to `nonfinite` when given). Anything else raises SerializationError naming its key path.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if nonfinite is not None:
            nonfinite.append(path or "<root>")
        return None
    if isinstance(value, torch.Tensor):
        return safe_jsonify(value.detach().cpu().tolist(), path, nonfinite)
    if isinstance(value, np.ndarray):
        return safe_jsonify(value.tolist(), path, nonfinite)
    if isinstance(value, np.generic):
        return safe_jsonify(value.item(), path, nonfinite)
    if isinstance(value, enum.Enum):
        return safe_jsonify(value.value, path, nonfinite)
    if isinstance(value, (pathlib.PurePath, torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, np.generic):
                k = k.item()
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise SerializationError(f"cannot serialize key {k!r} of type {type(k).__name__} at '{path or '<root>'}'")
            out[str(k)] = safe_jsonify(v, _key_path(path, k), nonfinite)
        return out
    if isinstance(value, (list, tuple)):
        return [safe_jsonify(v, _key_path(path, i), nonfinite) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = sorted(value, key=repr)  # deterministic order
        return [safe_jsonify(v, _key_path(path, i), nonfinite) for i, v in enumerate(items)]
    raise SerializationError(f"cannot serialize value of type {type(value).__name__} at '{path or '<root>'}'")


def dumps_strict(value: Any, indent: int | None = 2, nonfinite: list[str] | None = None) -> str:
    """safe_jsonify + json.dumps(allow_nan=False): the only way the project renders JSON.

    Key paths of non-finite floats written as null are appended to `nonfinite` when given.
    """
    return json.dumps(safe_jsonify(value, nonfinite=nonfinite), indent=indent, allow_nan=False, sort_keys=False) + "\n"


def loads_strict(text: str) -> Any:
    """Parse JSON, refusing NaN/Infinity tokens (which Python's json accepts by default)."""

    def _reject(token: str) -> Any:
        raise ValueError(f"non-finite number {token} in strict JSON")

    return json.loads(text, parse_constant=_reject)


def read_json(path: str | os.PathLike) -> Any:
    return loads_strict(pathlib.Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[io.IOBase]:
    """Write to a temp file in the target's directory, fsync, then os.replace onto the target.

    On any exception the target keeps its old content and the temp file is removed; an OSError
    (ENOSPC, EIO, ...) comes out as `WriteError` naming the target.
    """
    target = pathlib.Path(path)
    if not _WRITE_ENABLED:
        with open(os.devnull, mode) as sink:
            yield sink
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StreamGuardError):
            # Disk full, quota, I/O error: one line naming the file, still an OSError for callers.
            raise WriteError(f"{target}: cannot write ({exc.strerror or exc})", exc.errno) from exc
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json_atomic(path: str | os.PathLike, value: Any, indent: int | None = 2) -> list[str]:
    """Write strict JSON atomically; returns (and logs) the key paths of non-finite floats written as null."""
    nonfinite: list[str] = []
    text = dumps_strict(value, indent=indent, nonfinite=nonfinite)  # serialize first: a bad value never touches the file
    write_text_atomic(path, text)
    if nonfinite:
        shown = ", ".join(nonfinite[:10]) + (f" and {len(nonfinite) - 10} more" if len(nonfinite) > 10 else "")
        log.warning("%s: non-finite values written as null at %s", path, shown)
    return nonfinite


def save_torch_atomic(path: str | os.PathLike, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getbuffer())


def _load_failure(exc: Exception) -> str:
    """What is wrong with a file torch.load refused, in a few words. torch's own text spans many lines
    and suggests weights_only=False, which would execute whatever the file holds: never repeated."""
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"an object of type {found[1]}" if found else "content other than tensors and plain values"
        return f"it holds {what}, which safe (weights-only) loading refuses; it was not written by StreamGuard"
    return "truncated or corrupt (not a complete torch file)"


def load_torch(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a tensor/checkpoint file with weights_only=True; errors are one line naming the file."""
    p = pathlib.Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: file not found")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol: the error below says enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or unsafe content
        raise CorruptFileError(f"{p}: cannot load: {_load_failure(exc)}; restore it (dvc checkout) or delete it "
                               "to start over") from exc


def save_numpy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getbuffer())


def call_rank0(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a side-effecting function only where writes are enabled."""
    return fn(*args, **kwargs) if _WRITE_ENABLED else None
