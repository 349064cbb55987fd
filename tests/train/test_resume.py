"""Kill a training process with SIGKILL after an epoch checkpoint, re-run it, compare with an uninterrupted run."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from streamguard.io import load_torch, read_json

from .helpers import file_digests

REPO = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import os, sys, time
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from streamguard.train.engine import LoopConfig, RunInfo, make_loader, train
    from streamguard.train.losses import make_loss
    from streamguard.train.seeding import seed_everything

    SLOW = float(os.environ.get("SLOW_BATCH_S", "0"))

    def collate(items):
        if SLOW:
            time.sleep(SLOW)  # stretch the run so the test can kill it mid-epoch
        x = torch.stack([i[0] for i in items])
        return {"x": x, "labels": torch.stack([i[1] for i in items])}

    def data(n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 8, generator=g)
        return TensorDataset(x, (x[:, 0] - x[:, 2] + 0.5 * torch.randn(n, generator=g) > 0).float())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

        def forward(self, batch):
            return self.net(batch["x"]).squeeze(-1)

    seed_everything(11)
    loaders = {"train": make_loader(data(128, 1), 16, shuffle=True, seed=11, collate_fn=collate),
               "val": make_loader(data(64, 2), 16, seed=11, collate_fn=collate),
               "test": make_loader(data(64, 3), 16, seed=11, collate_fn=collate)}
    cfg = LoopConfig(epochs=6, lr=2e-2, patience=10)
    info = RunInfo("resume-test", 11, "data-hash", extra={"model_spec": {"kind": "net", "hidden": 16}},
                   log_dir=sys.argv[2])
    train(Net(), loaders, make_loss("bce"), cfg, sys.argv[1], info)
''')


def _launch(script, out_dir, log_dir, slow=0.0):
    # One thread each: the runs overlap on small machines, and oversubscribed OpenMP threads crawl.
    env = {**os.environ, "SLOW_BATCH_S": str(slow), "CI": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out_dir), str(log_dir)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc, timeout=60):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode(errors="replace")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full_log, killed_log = tmp_path / "log_full", tmp_path / "log_killed"

    full = _launch(script, full_dir, full_log)
    victim = _launch(script, killed_dir, killed_log, slow=0.03)
    checkpoint = killed_dir / "model_checkpoint.pt"
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        assert victim.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.01)
    time.sleep(0.1)  # into the next epoch
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / "metrics.json").exists()  # it really died mid-run
    saved_epoch = load_torch(checkpoint)["epoch"]
    assert 1 <= saved_epoch < 6

    resumed = _launch(script, killed_dir, killed_log)
    _finish(full)
    _finish(resumed)

    a, b = read_json(full_dir / "metrics.json"), read_json(killed_dir / "metrics.json")
    assert a == b and a["epochs_run"] == 6 and a["status"] == "ok"
    wa = load_torch(full_dir / "model_checkpoint.pt")["best_model"]
    wb = load_torch(killed_dir / "model_checkpoint.pt")["best_model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load_torch(killed_dir / "model_checkpoint.pt")["model_spec"] == {"kind": "net", "hidden": 16}
    # Every file is the same bytes as the uninterrupted run's (and no temp file was left behind).
    assert file_digests(killed_dir) == file_digests(full_dir)
    run_log = read_json(killed_log / "run_log.json")
    assert run_log["status"] == "ok" and run_log["resumed_from_epoch"] == saved_epoch
    assert len(run_log["epoch_seconds"]) == 6 and all(s > 0 for s in run_log["epoch_seconds"])
    assert run_log["wall_time_s"] >= sum(run_log["epoch_seconds"])
    assert not (killed_dir / "run_log.json").exists()
