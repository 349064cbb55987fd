"""model_checkpoint.pt: model spec inside, damaged files, old formats, resume refusals, crash and resume."""
from __future__ import annotations

import pytest
import torch

from streamguard.errors import CheckpointError
from streamguard.io import load_torch, read_json, save_torch_atomic
from streamguard.train.checkpoint import CHECKPOINT_FORMAT, load_model_spec
from streamguard.train.engine import (CHECKPOINT_FILE, METADATA_FILE, RUN_LOG_FILE, LoopConfig, load_best_weights,
                                      predict)

from .helpers import MLP, file_digests, outcome, run_toy, toy_loaders, toy_trainer

SPEC = {"kind": "mlp", "dim": 8, "hidden": 16, "dropout": 0.1}


def test_every_checkpoint_holds_the_model_spec_and_rebuilds_the_model(tmp_path):
    trainer = toy_trainer(tmp_path, extra={"model_spec": SPEC, "class_weighting": "none"})
    trainer.start()
    trainer.run_epoch()
    unfinished = load_torch(tmp_path / CHECKPOINT_FILE)
    assert unfinished["stop_reason"] is None and "optimizer" in unfinished  # resumable
    assert unfinished["format"] == CHECKPOINT_FORMAT and unfinished["model_spec"] == SPEC
    assert load_model_spec(tmp_path / CHECKPOINT_FILE) == SPEC

    assert unfinished["run_log"]["wall_time_s"] > 0 and len(unfinished["run_log"]["epoch_seconds"]) == 1
    assert "seconds" not in unfinished["history"][0] and "wall_time_s" not in unfinished

    result = trainer.run()
    finished = load_torch(tmp_path / CHECKPOINT_FILE)
    assert finished["stop_reason"] == "max_epochs" and "optimizer" not in finished
    # No wall-clock value anywhere in a finished checkpoint: identical runs write identical files.
    assert "run_log" not in finished and "wall_time_s" not in finished
    assert all("seconds" not in row for row in finished["history"])
    assert finished["model_spec"] == SPEC == read_json(tmp_path / METADATA_FILE)["extra"]["model_spec"]

    # The checkpoint alone gives the model back: architecture from its spec, weights from best_model.
    spec = load_model_spec(tmp_path / CHECKPOINT_FILE)
    model = MLP(spec["dim"], spec["hidden"], spec["dropout"])
    model.load_state_dict(load_best_weights(tmp_path / CHECKPOINT_FILE))
    again = predict(model, toy_loaders(0)["test"], "cpu")
    assert again.probs.tolist() == result.test.probs.tolist()


def test_spec_is_stored_as_plain_json_types(tmp_path):
    spec = {"kind": "mlp", "sizes": (16, 8), "path": tmp_path / "vocab.json"}
    run_toy(tmp_path, cfg=LoopConfig(epochs=1, lr=1e-2), extra={"model_spec": spec})
    assert load_model_spec(tmp_path / CHECKPOINT_FILE) == {"kind": "mlp", "sizes": [16, 8],
                                                           "path": str(tmp_path / "vocab.json")}


def test_a_run_without_spec_stores_none_and_load_model_spec_names_the_file(tmp_path):
    run_toy(tmp_path, cfg=LoopConfig(epochs=1, lr=1e-2))
    path = tmp_path / CHECKPOINT_FILE
    assert "model_spec" in load_torch(path) and load_torch(path)["model_spec"] is None
    with pytest.raises(CheckpointError, match="model_spec") as err:
        load_model_spec(path)
    assert str(path) in str(err.value)


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00not a checkpoint\xff" * 64)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "not_a_dict":
        save_torch_atomic(path, torch.zeros(3))
    elif how == "missing":
        path.unlink()


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "not_a_dict", "missing"])
def test_damaged_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, how):
    run_toy(tmp_path, cfg=LoopConfig(epochs=1, lr=1e-2), extra={"model_spec": SPEC})
    path = tmp_path / CHECKPOINT_FILE
    _damage(path, how)
    for load in (load_model_spec, load_best_weights):
        with pytest.raises(CheckpointError) as err:
            load(path)
        assert str(path) in str(err.value)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_resuming_from_a_damaged_checkpoint_is_a_checkpoint_error(tmp_path, how):
    # runs.py starts such a run over on CheckpointError; any other exception would end the stage.
    cfg = LoopConfig(epochs=3, lr=1e-2)
    trainer = toy_trainer(tmp_path, cfg=cfg)
    trainer.start()
    trainer.run_epoch()
    _damage(tmp_path / CHECKPOINT_FILE, how)
    with pytest.raises(CheckpointError, match="cannot load") as err:
        run_toy(tmp_path, cfg=cfg)
    assert str(tmp_path / CHECKPOINT_FILE) in str(err.value)


def _crash_after(out_dir, epochs, **kw):
    """Train `epochs` epochs and stop without finishing, as a killed process leaves its directory."""
    trainer = toy_trainer(out_dir, **kw)
    trainer.start()
    for _ in range(epochs):
        trainer.run_epoch()
    assert trainer.stop_reason is None
    assert load_torch(out_dir / CHECKPOINT_FILE)["epoch"] == epochs
    return trainer


@pytest.mark.parametrize("weighted_sampler", [False, True])
def test_in_process_crash_and_resume_matches_uninterrupted(tmp_path, weighted_sampler):
    cfg = LoopConfig(epochs=4, lr=1e-2, patience=5)
    full = run_toy(tmp_path / "full", cfg=cfg, weighted_sampler=weighted_sampler, log_dir=tmp_path / "log_full")
    first = _crash_after(tmp_path / "resumed", 2, cfg=cfg, weighted_sampler=weighted_sampler,
                         log_dir=tmp_path / "log_resumed")
    resumed = run_toy(tmp_path / "resumed", cfg=cfg, weighted_sampler=weighted_sampler,
                      log_dir=tmp_path / "log_resumed")
    assert outcome(resumed) == outcome(full)
    wf = load_best_weights(tmp_path / "full" / CHECKPOINT_FILE)
    wr = load_best_weights(tmp_path / "resumed" / CHECKPOINT_FILE)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    # Every file, the finished checkpoint included, is the same bytes as the uninterrupted run's.
    assert file_digests(tmp_path / "resumed") == file_digests(tmp_path / "full")

    run_log = read_json(tmp_path / "log_resumed" / RUN_LOG_FILE)
    assert run_log["status"] == "ok" and run_log["resumed_from_epoch"] == 2
    assert run_log["started_at"] == first.started_at < run_log["session_started_at"]  # the first session's start
    # The first session's epoch times come through the checkpoint; the total covers both sessions.
    assert run_log["epoch_seconds"][:2] == first.epoch_seconds and len(run_log["epoch_seconds"]) == 4
    assert all(s > 0 for s in run_log["epoch_seconds"]) and run_log["wall_time_s"] >= sum(run_log["epoch_seconds"])

    # A finished run re-started only rewrites its outputs, with the same numbers.
    again = run_toy(tmp_path / "resumed", cfg=cfg, weighted_sampler=weighted_sampler,
                    log_dir=tmp_path / "log_resumed")
    assert outcome(again) == outcome(full)
    again_log = read_json(tmp_path / "log_resumed" / RUN_LOG_FILE)
    assert again_log["resumed_from_epoch"] == 4 and again_log["epoch_seconds"] == run_log["epoch_seconds"]
    assert again_log["wall_time_s"] >= run_log["wall_time_s"]  # read back from the run log it left


def _as_old_format(path, fmt: int) -> None:
    """Rewrite an unfinished checkpoint as format 1 or 2 wrote it."""
    ckpt = load_torch(path)
    timing = ckpt.pop("run_log")
    ckpt["wall_time_s"] = timing["wall_time_s"]
    ckpt["history"] = [{**row, "seconds": s} for row, s in zip(ckpt["history"], timing["epoch_seconds"])]
    if fmt == 1:
        del ckpt["model_spec"]
    save_torch_atomic(path, {**ckpt, "format": fmt})


@pytest.mark.parametrize("fmt", [1, 2])
def test_an_old_format_checkpoint_still_resumes_and_is_rewritten_in_the_current_format(tmp_path, fmt):
    cfg = LoopConfig(epochs=4, lr=1e-2, patience=5)
    extra = {"model_spec": SPEC}
    full = run_toy(tmp_path / "full", cfg=cfg, extra=extra, log_dir=tmp_path / "logs")
    first = _crash_after(tmp_path / "old", 2, cfg=cfg, extra=extra, log_dir=tmp_path / "logs")
    path = tmp_path / "old" / CHECKPOINT_FILE
    _as_old_format(path, fmt)

    resumed = run_toy(tmp_path / "old", cfg=cfg, extra=extra, log_dir=tmp_path / "logs")
    assert outcome(resumed) == outcome(full)
    rewritten = load_torch(path)
    assert rewritten["format"] == CHECKPOINT_FORMAT and rewritten["model_spec"] == SPEC
    # The old per-row seconds move to the run log; the outputs end up as an uninterrupted run's.
    assert file_digests(tmp_path / "old") == file_digests(tmp_path / "full")
    assert read_json(tmp_path / "logs" / RUN_LOG_FILE)["epoch_seconds"][:2] == first.epoch_seconds


def test_an_unknown_format_is_refused(tmp_path):
    cfg = LoopConfig(epochs=3, lr=1e-2)
    _crash_after(tmp_path, 1, cfg=cfg)
    path = tmp_path / CHECKPOINT_FILE
    save_torch_atomic(path, {**load_torch(path), "format": CHECKPOINT_FORMAT + 1})
    with pytest.raises(CheckpointError, match="field 'format'"):
        run_toy(tmp_path, cfg=cfg)


def test_resume_refuses_other_data_config_or_model_spec(tmp_path):
    extra = {"model_spec": SPEC}
    run_toy(tmp_path, dataset_hash="data-A", extra=extra)
    with pytest.raises(CheckpointError, match="dataset_hash"):
        run_toy(tmp_path, dataset_hash="data-B", extra=extra)
    with pytest.raises(CheckpointError, match=r"train\.lr"):
        run_toy(tmp_path, dataset_hash="data-A", cfg=LoopConfig(epochs=3, lr=5e-3, patience=5), extra=extra)
    with pytest.raises(CheckpointError, match=r"'model_spec' differs .*at hidden"):
        run_toy(tmp_path, dataset_hash="data-A", extra={"model_spec": {**SPEC, "hidden": 32}})
    # a progress bar does not change the results, so it may differ
    assert run_toy(tmp_path, dataset_hash="data-A", cfg=LoopConfig(epochs=3, lr=3e-2, patience=5, progress=False),
                   extra=extra).status == "ok"
