"""CUDA-only checks; skipped cleanly without a GPU."""
from __future__ import annotations

import math

import pytest
import torch

from streamguard.io import load_torch
from streamguard.train.engine import CHECKPOINT_FILE, LoopConfig, RunInfo, Trainer, batch_to_device
from streamguard.train.losses import make_loss
from streamguard.train.seeding import seed_everything

from .helpers import MLP, toy_loaders

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _trainer(tmp_path, amp):
    seed_everything(0)
    cfg = LoopConfig(epochs=3, lr=1e-2, amp=amp, device="cuda", max_grad_norm=1.0)
    return Trainer(MLP(), toy_loaders(0), make_loss("bce"), cfg, tmp_path, RunInfo("gpu", 0))


def test_fp16_with_grad_scaler_trains_without_nan(tmp_path):
    trainer = _trainer(tmp_path, "fp16")
    trainer.start()
    trainer.run_epoch()
    scaler = load_torch(tmp_path / CHECKPOINT_FILE)["scaler"]
    assert scaler and scaler["scale"] > 0  # the scaler state is checkpointed
    assert scaler["scale"] == trainer.amp.scaler.get_scale()
    result = trainer.run()
    assert result.status == "ok" and result.metrics["epochs_run"] == 3
    for row in result.history:
        assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])
        assert row["grad_norm_after_clip"] <= 1.0 + 1e-4
        assert row["skipped_steps"] <= row["optimizer_steps"] // 2  # a few early overflow skips at most
    assert result.metrics["test"]["roc_auc"] > 0.8


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(), reason="no bf16 on this GPU")
def test_bf16_autocast_trains(tmp_path):
    result = _trainer(tmp_path, "bf16").run()
    assert result.status == "ok" and all(r["skipped_steps"] == 0 for r in result.history)


def test_batches_move_to_cuda():
    from torch_geometric.data import Batch, Data

    graph = Batch.from_data_list([Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([1.0]))])
    moved = batch_to_device({"tokens": {"input_ids": torch.ones(1, 4)}, "graph": graph}, "cuda")
    assert moved["tokens"]["input_ids"].is_cuda and moved["graph"].x.is_cuda
