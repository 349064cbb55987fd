"""DistributedDataParallel on CPU (gloo) in real torchrun processes: same results as one process,
one set of files, resume across world sizes, a failing rank stops every rank.

Tolerance: with the same effective batch, two processes see the same samples in every optimizer
step as one (batches.ShardedBatchSampler) and DDP averages the same gradient, only summed in
another order (float32): losses agree to ~1e-7 relative and, with a dropout-free model, metrics to
the last digit. The toy model has no dropout because each rank draws its own dropout masks, which
changes the trajectory (not the expected result) and would need a statistical tolerance instead.
"""
from __future__ import annotations

import csv
import math
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch.utils.data import BatchSampler, WeightedRandomSampler

from streamguard.data.datasets import LengthGroupedBatchSampler
from streamguard.errors import ConfigError
from streamguard.io import load_torch, read_json
from streamguard.train import distributed
from streamguard.train.batches import ShardedBatchSampler
from streamguard.train.seeding import make_generator

from .helpers import file_digests

REPO = pathlib.Path(__file__).resolve().parents[2]
FAIL_WITHIN_S = 15  # from the failing rank's raise to torchrun's exit with every worker gone
REL_TOL = 1e-5

SCRIPT = textwrap.dedent('''
    import os, pathlib, sys, time
    from streamguard.train import distributed
    from streamguard.train.engine import LoopConfig
    from streamguard.train.seeding import seed_everything
    from tests.train.helpers import MLP, toy_trainer

    out, log = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    stop_after, fail_at = int(sys.argv[3]), int(sys.argv[4])

    class Net(MLP):
        calls = 0

        def forward(self, batch):
            Net.calls += 1
            if fail_at and distributed.current().rank == 1 and Net.calls >= fail_at:
                (log / "failed_at").write_text(repr(time.time()))
                raise RuntimeError("rank 1 fails on purpose")
            return super().forward(batch)

    with distributed.session("auto", timeout_s=20) as ctx:
        log.mkdir(parents=True, exist_ok=True)
        (log / f"pid_{ctx.rank}").write_text(str(os.getpid()))
        seed_everything(3)
        # 120 samples in batches of 7: a last batch of one sample leaves rank 1 a stand-in of weight 0.
        t = toy_trainer(out, seed=3, cfg=LoopConfig(epochs=4, lr=3e-2, patience=10), model=Net(dropout=0.0),
                        log_dir=log, batch_size=7, n_train=120, weighted_sampler=True,
                        extra={"model_spec": {"kind": "mlp"}})
        t.start()
        while t.stop_reason is None and (stop_after == 0 or t.epoch < stop_after):
            t.run_epoch()
            if t.collapse.collapsed:
                t._on_collapse()
        if t.stop_reason is not None:
            t.finish()
''')


def _env():
    # One thread each: two processes on a small machine, and oversubscribed OpenMP threads crawl.
    return {**os.environ, "CI": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _launch(script, procs, out, log, stop_after=0, fail_at=0, check=True):
    args = [str(script), str(out), str(log), str(stop_after), str(fail_at)]
    cmd = ([sys.executable, *args] if procs == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}", *args])
    proc = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _history(run_dir):
    with open(run_dir / "metrics_history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _assert_same_results(a, b):
    ma, mb = read_json(a / "metrics.json"), read_json(b / "metrics.json")
    assert (ma["status"], ma["best_epoch"], ma["epochs_run"]) == (mb["status"], mb["best_epoch"], mb["epochs_run"])
    for split in ("val", "test"):
        for key, value in ma[split].items():
            assert value == pytest.approx(mb[split][key], rel=REL_TOL), (split, key)
    assert ma["threshold"] == pytest.approx(mb["threshold"], rel=REL_TOL)
    ha, hb = _history(a), _history(b)
    assert [r["optimizer_steps"] for r in ha] == [r["optimizer_steps"] for r in hb]
    for ra, rb in zip(ha, hb):
        for key in ("train_loss", "val_loss", "val_roc_auc", "grad_norm_before_clip", "grad_norm_max"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=REL_TOL), key


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The toy script and an uninterrupted one-process run of it."""
    root = tmp_path_factory.mktemp("ddp")
    script = root / "train_toy.py"
    script.write_text(SCRIPT)
    _launch(script, 1, root / "one", root / "log_one")
    return root, script


# ------------------------------------------------------------------ sharding (in process)


def _single_process(batches, accum):
    return [batches[i:i + accum] for i in range(0, len(batches), accum)]


@pytest.mark.parametrize("accum", [1, 2, 3])
@pytest.mark.parametrize("sampler", ["weighted", "length_grouped"])
def test_shards_cover_each_window_of_one_process_with_weights_that_average_to_its_gradient(accum, sampler):
    n, batch, world = 45, 4, 2
    labels = (torch.arange(n) % 3 == 0).long()

    def make():
        gen = make_generator(5)
        if sampler == "weighted":
            weights = torch.where(labels == 1, 2.0, 1.0)
            return BatchSampler(WeightedRandomSampler(weights, n, replacement=True, generator=gen), batch, False), gen
        return LengthGroupedBatchSampler(torch.randint(1, 50, (n,), generator=torch.Generator().manual_seed(1)),
                                         batch, gen, weights=labels.double() + 1), gen

    reference, ref_gen = make()
    windows = _single_process([list(b) for b in reference], accum)
    ranks = []
    for rank in range(world):
        inner, gen = make()
        sharded = ShardedBatchSampler(inner, accum, rank, world)
        steps = list(sharded)
        assert len(steps) == len(sharded) == len(sharded.weights) == len(sharded.sizes)
        assert torch.equal(gen.get_state(), ref_gen.get_state())  # the sampler position does not depend on ranks
        ranks.append((sharded, steps))
    assert len({len(steps) for _, steps in ranks}) == 1  # every rank runs the same number of steps
    per_rank = ranks[0][0].grad_accum
    assert per_rank == (accum // world if accum % world == 0 else accum)
    for w, window in enumerate(windows):
        got, mass = [], {}
        for sharded, steps in ranks:
            for i in range(w * per_rank, min((w + 1) * per_rank, len(steps))):
                if sharded.weights[i] > 0:
                    got.extend(steps[i])
                    # A sample's gradient share: weight / world / shard size; one process gives 1 / (batch size x window).
                    for idx in steps[i]:
                        mass[idx] = mass.get(idx, 0.0) + sharded.weights[i] / world / len(steps[i])
                else:
                    assert sharded.sizes[i] == 0 and len(steps[i]) == 1
        expected = [i for b in window for i in b]
        assert sorted(got) == sorted(expected)
        for idx in set(expected):  # drawn with replacement, a sample can recur within a window
            assert mass[idx] == pytest.approx(sum(b.count(idx) / (len(b) * len(window)) for b in window))


def test_one_process_keeps_its_code_path_and_helpers_are_no_ops():
    distributed.teardown()
    ctx = distributed.current()
    assert not ctx.enabled and ctx.is_main and ctx.describe() == {"world_size": 1, "backend": None}
    assert distributed.on_main(lambda x: x + 1, 1) == 2 and distributed.broadcast_object("a") == "a"
    distributed.ensure_same(1, "nothing")
    assert distributed.launcher_argv("python", ["stages/train.py", "gnn", "42"]) is None


def test_launcher_runs_the_stage_under_torchrun_of_this_interpreter(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    argv = distributed.launcher_argv("torchrun --nproc-per-node=2", ["stages/train.py", "gnn", "42"])
    assert argv == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "stages/train.py", "gnn", "42"]
    monkeypatch.setenv("WORLD_SIZE", "2")  # already launched: no second launcher
    assert distributed.launcher_argv("torchrun --nproc-per-node=2", ["stages/train.py"]) is None


def test_distributed_off_refuses_a_multi_process_launch(monkeypatch):
    distributed.teardown()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="train.distributed is off"):
        distributed.setup("off")
    distributed.teardown()


# ------------------------------------------------------------------ real processes


@pytest.mark.slow
def test_two_processes_match_one_and_write_one_set_of_files(runs):
    root, script = runs
    _launch(script, 2, root / "two", root / "log_two")
    _assert_same_results(root / "one", root / "two")
    assert set(file_digests(root / "two")) == set(file_digests(root / "one"))  # no per-rank or temp files
    assert sorted(p.name for p in (root / "log_two").iterdir()) == ["pid_0", "pid_1", "run_log.json"]
    meta = read_json(root / "two" / "training_metadata.json")
    assert meta["distributed"] == {"world_size": 2, "backend": "gloo", "per_rank_batch": 4, "per_rank_grad_accum": 1}
    assert read_json(root / "one" / "training_metadata.json")["distributed"]["world_size"] == 1
    ckpt = load_torch(root / "two" / "model_checkpoint.pt")
    assert not any(k.startswith("module.") for k in ckpt["best_model"])


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_on_one_and_back(runs):
    root, script = runs
    out, log = root / "mixed", root / "log_mixed"
    _launch(script, 2, out, log, stop_after=1)
    ckpt = load_torch(out / "model_checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["stop_reason"] is None
    assert not any(k.startswith("module.") for k in ckpt["model"])
    _launch(script, 1, out, log, stop_after=3)
    assert load_torch(out / "model_checkpoint.pt")["epoch"] == 3
    _launch(script, 2, out, log)
    _assert_same_results(root / "one", out)
    assert read_json(log / "run_log.json")["resumed_from_epoch"] == 3


@pytest.mark.slow
def test_a_failing_rank_stops_every_rank_without_half_written_files(runs):
    root, script = runs
    out, log = root / "failed", root / "log_failed"
    proc = _launch(script, 2, out, log, fail_at=25, check=False)  # rank 1's 25th forward: in epoch 2
    ended = time.time()
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stdout + proc.stderr
    assert ended - float((log / "failed_at").read_text()) < FAIL_WITHIN_S
    for rank in (0, 1):
        pid = int((log / f"pid_{rank}").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    files = set(file_digests(out))
    assert "metrics.json" not in files and not any(name.startswith(".") for name in files)
    assert load_torch(out / "model_checkpoint.pt")["epoch"] == 1  # the last complete epoch, whole
    assert math.isfinite(read_json(out / "training_metadata.json")["distributed"]["world_size"])
