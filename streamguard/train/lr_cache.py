"""Persistent cache of LR-finder results.

Public API
----------
- ``cache_key(model_config, dataset_hash, seed, finder_settings=None, code=None) -> str``: sha256 of
  the canonical JSON (sorted keys, no whitespace, strict) of those values. Pass the LR-finder settings
  (steps, start/end LR, ...) as ``finder_settings`` so a changed sweep is a miss. ``code`` defaults to
  ``code_fingerprint()``, the sha256 of this package's Python sources: a curve measured by other model
  or loop code is a miss, so a warm cache gives what a cold one would.
- ``LRCache(cache_dir="training/cache/lr_finder", ttl_hours=168, clock=time.time)``:
  ``get(model_type, key) -> LRFinderResult | None``, ``put(model_type, key, result, meta=None)``,
  ``get_or_compute(model_type, model_config, dataset_hash, seed, compute, finder_settings=None)
  -> (LRFinderResult, CacheOutcome)``; ``counters`` (this process) and ``stats.json`` in the cache
  dir (all processes: hits, misses, expired, corrupt, writes).
- ``list_entries(cache_dir, ttl_hours=168) -> list[dict]`` and
  ``clear_entries(cache_dir, model_type=None) -> int`` for ``streamguard lr-cache list|clear``.

Layout: ``{cache_dir}/{model_type}/{key}.json``, each entry written atomically and holding the whole
``LRFinderResult`` (curve included, so a hit still writes lr_curve.csv/png). An entry that cannot be
parsed, has another format version or key, or is older than the TTL counts as a miss; the fresh
result then overwrites it.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import pathlib
import re
import time
from typing import Any, Callable, Mapping

from ..errors import ConfigError
from ..io import read_json, safe_jsonify, write_json_atomic
from .lr_finder import LRFinderResult

log = logging.getLogger("streamguard.train.lr_cache")

DEFAULT_CACHE_DIR = "training/cache/lr_finder"
DEFAULT_TTL_HOURS = 168.0
ENTRY_VERSION = 1
STATS_FILE = "stats.json"
_COUNTERS = ("hits", "misses", "expired", "corrupt", "writes")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


_PACKAGE = pathlib.Path(__file__).resolve().parents[1]


@functools.cache
def code_fingerprint(root: pathlib.Path = _PACKAGE) -> str:
    """sha256 over the relative paths and bytes of every `*.py` under `root` (the package).

    Without it in the key, a warm cache hides a change to the model, the loss or the loop: the stage
    reruns (DVC sees the code change) but gets the old curve back, and a fresh clone's cold cache
    then reproduces other figures than the committed ones.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(model_config: Mapping[str, Any], dataset_hash: str | None, seed: int,
              finder_settings: Mapping[str, Any] | None = None, code: str | None = None) -> str:
    body = {"model_config": model_config, "dataset_hash": dataset_hash, "seed": int(seed),
            "finder_settings": finder_settings or {}, "code": code_fingerprint() if code is None else code}
    canonical = json.dumps(safe_jsonify(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class CacheOutcome:
    hit: bool
    key: str
    reason: str  # "hit" | "missing" | "expired" | "corrupt"
    path: pathlib.Path


def _check_name(model_type: str) -> str:
    if not _SAFE_NAME.match(model_type) or model_type in (".", ".."):
        raise ConfigError(f"LR cache: model type '{model_type}' is not a valid directory name")
    return model_type


class LRCache:
    def __init__(self, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, ttl_hours: float = DEFAULT_TTL_HOURS,
                 clock: Callable[[], float] = time.time):
        if ttl_hours <= 0:
            raise ConfigError(f"lr_find.ttl_hours must be > 0, got {ttl_hours}")
        self.root = pathlib.Path(cache_dir)
        self.ttl_s = float(ttl_hours) * 3600.0
        self.clock = clock
        self.counters = {name: 0 for name in _COUNTERS}

    def entry_path(self, model_type: str, key: str) -> pathlib.Path:
        return self.root / _check_name(model_type) / f"{key}.json"

    def _count(self, name: str) -> None:
        self.counters[name] += 1
        path = self.root / STATS_FILE
        try:
            stats = read_json(path) if path.exists() else {}
            if not isinstance(stats, dict):
                stats = {}
        except (OSError, ValueError):
            stats = {}  # a damaged stats file only loses counts; start it over
        totals = {k: int(stats.get(k, 0)) if isinstance(stats.get(k, 0), int) else 0 for k in _COUNTERS}
        totals[name] += 1
        totals["updated_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat()
        write_json_atomic(path, totals)

    def _lookup(self, model_type: str, key: str) -> tuple[LRFinderResult | None, str]:
        path = self.entry_path(model_type, key)
        if not path.exists():
            return None, "missing"
        try:
            entry = read_json(path)
            if entry.get("version") != ENTRY_VERSION or entry.get("key") != key:
                raise ValueError("format version or key mismatch")
            created = float(entry["created_unix"])
            result = LRFinderResult.from_dict(entry["result"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            log.warning("LR cache: corrupt entry %s (%s); recomputing", path, exc)
            return None, "corrupt"
        if self.clock() - created > self.ttl_s:
            log.info("LR cache: expired entry %s (older than %.0f h)", path, self.ttl_s / 3600)
            return None, "expired"
        return result, "hit"

    def get(self, model_type: str, key: str) -> LRFinderResult | None:
        result, reason = self._lookup(model_type, key)
        if result is None:
            self._count("misses")
            if reason in ("expired", "corrupt"):
                self._count(reason)
            log.info("LR cache miss (%s) for %s %s", reason, model_type, key[:12])
        else:
            self._count("hits")
            log.info("LR cache hit for %s %s: lr=%.3g", model_type, key[:12], result.lr)
        return result

    def put(self, model_type: str, key: str, result: LRFinderResult, meta: Mapping[str, Any] | None = None) -> pathlib.Path:
        now = self.clock()
        entry = {"version": ENTRY_VERSION, "key": key, "model_type": model_type, "created_unix": now,
                 "created_at": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(),
                 **dict(meta or {}), "result": result.to_dict()}
        path = self.entry_path(model_type, key)
        write_json_atomic(path, entry)
        self._count("writes")
        return path

    def get_or_compute(self, model_type: str, model_config: Mapping[str, Any], dataset_hash: str | None, seed: int,
                       compute: Callable[[], LRFinderResult],
                       finder_settings: Mapping[str, Any] | None = None) -> tuple[LRFinderResult, CacheOutcome]:
        key = cache_key(model_config, dataset_hash, seed, finder_settings)
        path = self.entry_path(model_type, key)
        result, reason = self._lookup(model_type, key)
        if result is not None:
            self._count("hits")
            log.info("LR cache hit for %s %s: lr=%.3g", model_type, key[:12], result.lr)
            return result, CacheOutcome(True, key, "hit", path)
        self._count("misses")
        if reason in ("expired", "corrupt"):
            self._count(reason)
        log.info("LR cache miss (%s) for %s %s; running the LR finder", reason, model_type, key[:12])
        result = compute()
        self.put(model_type, key, result, {"model_config": model_config, "dataset_hash": dataset_hash,
                                           "seed": int(seed), "finder_settings": finder_settings or {}})
        return result, CacheOutcome(False, key, reason, path)


def _entry_files(root: pathlib.Path, model_type: str | None) -> list[pathlib.Path]:
    if not root.is_dir():
        return []
    dirs = [root / _check_name(model_type)] if model_type else sorted(p for p in root.iterdir() if p.is_dir())
    return [f for d in dirs if d.is_dir() for f in sorted(d.glob("*.json"))]


def list_entries(cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                 ttl_hours: float = DEFAULT_TTL_HOURS) -> list[dict[str, Any]]:
    """One flat dict per entry: model_type, key, lr, confidence, created_at, age_hours, state, path."""
    now = time.time()
    rows = []
    for path in _entry_files(pathlib.Path(cache_dir), None):
        row: dict[str, Any] = {"model_type": path.parent.name, "key": path.stem}
        try:
            entry = read_json(path)
            age = (now - float(entry["created_unix"])) / 3600.0
            row.update(lr=entry["result"]["lr"], confidence=entry["result"]["confidence"],
                       created_at=entry["created_at"], age_hours=round(age, 2),
                       state="expired" if age > ttl_hours else "valid")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            row.update(lr=None, confidence=None, created_at=None, age_hours=None, state="corrupt")
        row["path"] = str(path)
        rows.append(row)
    return rows


def clear_entries(cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, model_type: str | None = None) -> int:
    """Delete cached entries (of one model type, or all); returns how many were removed."""
    removed = 0
    for path in _entry_files(pathlib.Path(cache_dir), model_type):
        path.unlink(missing_ok=True)
        removed += 1
    log.info("LR cache: removed %d entries from %s", removed, cache_dir)
    return removed
