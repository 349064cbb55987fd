"""Persistent LR-finder cache: keys, hits, misses, corrupt and expired entries, list/clear."""
from __future__ import annotations

import math
import re

import pytest

from streamguard.errors import ConfigError
from streamguard.io import read_json
from streamguard.train.lr_cache import LRCache, cache_key, clear_entries, code_fingerprint, list_entries
from streamguard.train.losses import make_loss
from streamguard.train.lr_finder import LRFinderResult, find_lr, save_lr_outputs
from streamguard.train.seeding import seed_everything

from .helpers import MLP, toy_loaders

MODEL_CFG = {"hidden_size": 64, "num_layers": 2, "lr_min": 1e-4, "lr_max": 1e-3}


def fake_result(lr=3e-4):
    return LRFinderResult(lrs=[1e-7, 1e-4, 1.0], losses=[0.7, 0.5, math.nan], smoothed=[0.7, 0.6, math.nan], lr=lr,
                          raw_lr=lr, confidence="high", reason="test", lr_range=(1e-4, 1e-3),
                          stop_reason="nonfinite", settings={"num_steps": 3})


class Counter:
    def __init__(self, lr=3e-4):
        self.calls, self.lr = 0, lr

    def __call__(self):
        self.calls += 1
        return fake_result(self.lr)


def test_key_is_canonical_and_sensitive():
    a = cache_key({"b": 1, "a": [1, 2]}, "md5-1", 42)
    assert a == cache_key({"a": [1, 2], "b": 1}, "md5-1", 42)  # key order does not matter
    assert re.fullmatch(r"[0-9a-f]{64}", a)  # a sha256 hex digest, usable as a file name
    assert len({a, cache_key({"b": 2, "a": [1, 2]}, "md5-1", 42), cache_key({"b": 1, "a": [1, 2]}, "md5-2", 42),
                cache_key({"b": 1, "a": [1, 2]}, "md5-1", 7),
                cache_key({"b": 1, "a": [1, 2]}, "md5-1", 42, {"steps": 50})}) == 5


def test_other_code_is_another_key(tmp_path):
    """A curve measured by other model or loop code must not be served: the package's sources are in the key."""
    tree = tmp_path / "pkg"
    (tree / "models").mkdir(parents=True)
    (tree / "models" / "net.py").write_text("WIDTH = 64\n")
    (tree / "notes.txt").write_text("not code")
    before = code_fingerprint.__wrapped__(tree)
    (tree / "notes.txt").write_text("other text")  # only Python sources count
    assert code_fingerprint.__wrapped__(tree) == before
    (tree / "models" / "net.py").write_text("WIDTH = 65\n")
    after = code_fingerprint.__wrapped__(tree)
    assert after != before
    assert cache_key(MODEL_CFG, "md5", 42, code=before) != cache_key(MODEL_CFG, "md5", 42, code=after)
    assert cache_key(MODEL_CFG, "md5", 42) == cache_key(MODEL_CFG, "md5", 42, code=code_fingerprint())


def test_rerun_with_nothing_changed_is_a_full_hit(tmp_path):
    compute = Counter()
    first, outcome = LRCache(tmp_path).get_or_compute("transformer", MODEL_CFG, "md5", 42, compute)
    assert not outcome.hit and outcome.reason == "missing" and compute.calls == 1
    assert outcome.path == tmp_path / "transformer" / f"{outcome.key}.json"

    cache = LRCache(tmp_path)  # a new process
    again, outcome2 = cache.get_or_compute("transformer", MODEL_CFG, "md5", 42, compute)
    assert outcome2.hit and compute.calls == 1 and cache.counters["hits"] == 1 and cache.counters["misses"] == 0
    assert again.lrs == first.lrs and again.lr == first.lr and math.isnan(again.losses[-1])  # the curve comes back
    stats = read_json(tmp_path / "stats.json")
    assert (stats["hits"], stats["misses"], stats["writes"]) == (1, 1, 1)

    _, other = cache.get_or_compute("transformer", {**MODEL_CFG, "num_layers": 3}, "md5", 42, compute)
    assert not other.hit and compute.calls == 2


def test_corrupt_entry_is_a_miss_and_gets_rewritten(tmp_path):
    cache = LRCache(tmp_path)
    _, outcome = cache.get_or_compute("gnn", MODEL_CFG, "md5", 1, Counter())
    outcome.path.write_text('{"version": 1, "key": "trunc')
    compute = Counter(lr=5e-4)
    result, again = cache.get_or_compute("gnn", MODEL_CFG, "md5", 1, compute)
    assert not again.hit and again.reason == "corrupt" and compute.calls == 1 and result.lr == 5e-4
    assert read_json(outcome.path)["result"]["lr"] == 5e-4
    assert cache.get("gnn", outcome.key).lr == 5e-4
    assert read_json(tmp_path / "stats.json")["corrupt"] == 1


def test_expired_entry_is_a_miss(tmp_path):
    now = [1_000_000.0]
    cache = LRCache(tmp_path, ttl_hours=168, clock=lambda: now[0])
    key = cache_key(MODEL_CFG, "md5", 1)
    cache.put("gnn", key, fake_result())
    now[0] += 167 * 3600
    assert cache.get("gnn", key) is not None
    now[0] += 2 * 3600
    assert cache.get("gnn", key) is None
    compute = Counter()
    _, outcome = cache.get_or_compute("gnn", MODEL_CFG, "md5", 1, compute)
    assert outcome.reason == "expired" and compute.calls == 1
    assert cache.get("gnn", key) is not None  # rewritten with a fresh timestamp
    assert cache.counters["expired"] == 2


def test_list_and_clear_entries(tmp_path):
    cache = LRCache(tmp_path)
    for model, seed in (("transformer", 1), ("transformer", 2), ("gnn", 1)):
        cache.put(model, cache_key(MODEL_CFG, "md5", seed), fake_result())
    (tmp_path / "gnn" / "broken.json").write_text("not json")
    rows = list_entries(tmp_path)
    assert len(rows) == 4
    assert sorted(r["model_type"] for r in rows) == ["gnn", "gnn", "transformer", "transformer"]
    assert {r["state"] for r in rows} == {"valid", "corrupt"}
    assert all(r["lr"] == 3e-4 for r in rows if r["state"] == "valid")
    assert clear_entries(tmp_path, model_type="transformer") == 2
    assert {r["model_type"] for r in list_entries(tmp_path)} == {"gnn"}
    assert clear_entries(tmp_path) == 2 and list_entries(tmp_path) == []
    assert list_entries(tmp_path / "missing") == [] and clear_entries(tmp_path / "missing") == 0
    assert (tmp_path / "stats.json").exists()  # counters survive a clear


def test_bad_model_type_and_ttl(tmp_path):
    with pytest.raises(ConfigError, match="not a valid directory name"):
        LRCache(tmp_path).entry_path("../escape", "k")
    with pytest.raises(ConfigError, match="ttl_hours"):
        LRCache(tmp_path, ttl_hours=0)


def test_a_hit_writes_the_same_curve_files_as_the_sweep(tmp_path):
    def sweep():
        seed_everything(0)
        loader = toy_loaders(0, n_train=64, batch_size=16)["train"]
        return find_lr(MLP(dropout=0.0), loader, make_loss("bce"), (1e-4, 1e-2), device="cpu", num_steps=30,
                       skip_start=3, skip_end=2)

    cache = LRCache(tmp_path / "cache")
    miss, first = cache.get_or_compute("gnn", MODEL_CFG, "md5", 42, sweep, {"steps": 30})
    hit, second = cache.get_or_compute("gnn", MODEL_CFG, "md5", 42, sweep, {"steps": 30})
    assert not first.hit and second.hit
    a = save_lr_outputs(miss, tmp_path / "miss")
    b = save_lr_outputs(hit, tmp_path / "hit")
    assert a["csv"].read_text() == b["csv"].read_text()
    assert read_json(a["json"]) == read_json(b["json"])
    assert b["png"].stat().st_size > 1000
