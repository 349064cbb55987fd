"""Identical runs write identical run directories (DVC hashes them); what differs goes to run_log.json."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import torch
from torch import nn

from streamguard.io import read_json
from streamguard.train.engine import COLLAPSE_FILE, RUN_LOG_FILE, LoopConfig, ParamGroupSpec

from .helpers import file_digests, run_toy, toy_trainer

RUN_LOG_KEYS = ["model", "seed", "status", "out_dir", "started_at", "session_started_at", "ended_at", "wall_time_s",
                "epoch_seconds", "resumed_from_epoch", "git_commit", "hostname"]
# Differ between two identical runs (or between their directories); everything else must not.
VARYING = {"out_dir", "started_at", "session_started_at", "ended_at", "wall_time_s", "epoch_seconds", "git_commit",
           "hostname"}


class ConstantModel(nn.Module):
    """One logit for every sample: the run collapses after three validations and writes collapse_report.json."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(0.3))

    def forward(self, batch):
        return self.bias.expand(batch["x"].shape[0])


def _groups(model):
    return [ParamGroupSpec("body", model.net[:2], 0.5), ParamGroupSpec("head", model.net[4], 1.0)]


SCENARIOS = {
    "max_epochs": {},
    "groups_early_stopping": {"cfg": LoopConfig(epochs=10, lr=1e-2, patience=2, min_delta=10.0),
                              "param_groups": _groups, "weighted_sampler": True},
    "collapsed": {"cfg": LoopConfig(epochs=10, lr=1e-3, patience=10), "model_fn": ConstantModel},
}


def _run(out_dir, log_dir, scenario):
    kw = dict(SCENARIOS[scenario])
    model_fn = kw.pop("model_fn", None)
    return run_toy(out_dir, seed=3, log_dir=log_dir, model=model_fn() if model_fn else None,
                   extra={"model_spec": {"kind": "mlp", "hidden": 16}}, **kw)


def _timestamp(text):
    stamp = dt.datetime.fromisoformat(text)
    assert stamp.tzinfo is not None
    return stamp


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_identical_runs_write_byte_identical_run_directories(tmp_path, scenario):
    a = _run(tmp_path / "a" / "run", tmp_path / "a" / "logs", scenario)
    b = _run(tmp_path / "b" / "run", tmp_path / "b" / "logs", scenario)
    assert a.status == b.status
    if scenario == "collapsed":
        assert a.status == "collapsed" and (tmp_path / "a" / "run" / COLLAPSE_FILE).exists()

    digests_a, digests_b = file_digests(tmp_path / "a" / "run"), file_digests(tmp_path / "b" / "run")
    assert set(digests_a) == set(digests_b)
    assert {"metrics.json", "metrics_history.csv", "training_metadata.json", "model_checkpoint.pt"} <= set(digests_a)
    assert RUN_LOG_FILE not in digests_a  # log_dir given: the run log stays out of the hashed directory
    assert digests_a == digests_b

    logs = [read_json(tmp_path / side / "logs" / RUN_LOG_FILE) for side in ("a", "b")]
    assert [list(log) for log in logs] == [RUN_LOG_KEYS, RUN_LOG_KEYS]
    stable = [{k: v for k, v in log.items() if k not in VARYING} for log in logs]
    assert stable[0] == stable[1]
    for side, log in zip("ab", logs):
        assert (log["model"], log["seed"], log["status"], log["resumed_from_epoch"]) == ("toy", 3, a.status, None)
        assert log["out_dir"] == str(tmp_path / side / "run")
        assert _timestamp(log["started_at"]) == _timestamp(log["session_started_at"]) <= _timestamp(log["ended_at"])
        assert len(log["epoch_seconds"]) == len(a.history) and all(s > 0 for s in log["epoch_seconds"])
        assert log["wall_time_s"] >= sum(log["epoch_seconds"])
        assert log["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40,64}", log["git_commit"])
        assert isinstance(log["hostname"], str) and log["hostname"]


def test_without_log_dir_the_run_log_is_written_to_the_out_dir(tmp_path):
    result = run_toy(tmp_path / "run")
    log = read_json(tmp_path / "run" / RUN_LOG_FILE)
    assert log["status"] == "ok" and len(log["epoch_seconds"]) == len(result.history) == 3


def test_the_run_log_is_rewritten_at_every_epoch_end_and_at_the_finish(tmp_path):
    trainer = toy_trainer(tmp_path / "run", log_dir=tmp_path / "logs" / "nested")  # created when missing
    path = tmp_path / "logs" / "nested" / RUN_LOG_FILE
    trainer.start()
    started = read_json(path)
    assert started["status"] == "running" and started["ended_at"] is None and started["epoch_seconds"] == []
    trainer.run_epoch()
    after_one = read_json(path)
    assert after_one["status"] == "running" and after_one["ended_at"] is None
    assert after_one["epoch_seconds"] == trainer.epoch_seconds and len(after_one["epoch_seconds"]) == 1
    trainer.run()
    done = read_json(path)
    assert done["status"] == "ok" and done["ended_at"] is not None and len(done["epoch_seconds"]) == 3
    assert done["wall_time_s"] >= after_one["wall_time_s"] > 0
    assert not (tmp_path / "run" / RUN_LOG_FILE).exists()
