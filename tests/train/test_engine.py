"""The training loop on tiny models: outputs, determinism, accumulation, early stopping, progress bar."""
from __future__ import annotations

import csv
import math
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from streamguard.errors import ConfigError
from streamguard.io import load_torch, read_json
from streamguard.train.engine import (CHECKPOINT_FILE, COLLAPSE_FILE, HISTORY_FILE, METADATA_FILE, METRICS_FILE,
                                      LoopConfig, ParamGroupSpec, RunInfo, Trainer, batch_labels,
                                      batch_to_device, load_best_weights, make_loader, show_progress, train)
from streamguard.train.losses import make_loss
from streamguard.train.metrics import METRIC_NAMES, compute_metrics
from streamguard.train.optim import build_optimizer, warmup_linear
from streamguard.train.outputs import HISTORY_COLUMNS
from streamguard.train.seeding import seed_everything

from .helpers import MLP, ToyDataset, outcome, run_toy

CONTRACT_COLUMNS = ["epoch", "lr", "train_loss", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
                    "val_roc_auc", "val_pr_auc", "val_mcc", "grad_norm_before_clip", "grad_norm_after_clip",
                    "skipped_steps"]


def read_history(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- batches


def test_batch_to_device_and_labels_for_dicts_nested_dicts_and_pyg():
    from torch_geometric.data import Batch, Data

    graphs = Batch.from_data_list([Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([1.0])),
                                   Data(x=torch.ones(3, 3), edge_index=torch.tensor([[0], [2]]), y=torch.tensor([0.0]))])
    flat = {"input_ids": torch.ones(2, 4, dtype=torch.long), "labels": torch.tensor([1, 0])}
    fusion = {"tokens": {"input_ids": torch.ones(2, 4, dtype=torch.long), "labels": torch.tensor([0, 1])},
              "graph": graphs, "meta": "kept"}
    assert batch_labels(flat).tolist() == [1, 0]
    assert batch_labels(graphs).tolist() == [1.0, 0.0]
    assert batch_labels(fusion).tolist() == [0, 1]  # found in the nested dict
    assert batch_labels({**fusion, "labels": torch.tensor([1, 1])}).tolist() == [1, 1]  # top level wins

    moved = batch_to_device(fusion, "meta")  # the meta device proves every tensor was moved
    assert moved["tokens"]["input_ids"].device.type == "meta"
    assert moved["graph"].x.device.type == "meta" and moved["graph"].edge_index.device.type == "meta"
    assert moved["meta"] == "kept"
    assert batch_to_device([torch.ones(1), (torch.zeros(1),)], "meta")[1][0].device.type == "meta"
    with pytest.raises(KeyError, match="labels"):
        batch_labels({"input_ids": torch.ones(1)})


def test_make_loader_is_seeded_and_collates_pyg():
    ds = ToyDataset(40)

    def order(seed):
        return [b["labels"].tolist() + b["x"][:, 0].tolist() for b in make_loader(ds, 8, shuffle=True, seed=seed)]

    assert order(3) == order(3)
    assert order(3) != order(4)

    from torch_geometric.data import Batch, Data

    graphs = [Data(x=torch.randn(i + 2, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([float(i % 2)]))
              for i in range(6)]
    batch = next(iter(make_loader(graphs, 3, seed=0)))
    assert isinstance(batch, Batch) and batch.num_graphs == 3 and batch.y.tolist() == [0.0, 1.0, 0.0]


# ---------------------------------------------------------------- optimizer and schedule


class WithEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 1)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)

    def forward(self, batch):
        return self.head(self.body(self.norm(self.emb(batch["ids"]).mean(1)))).squeeze(-1)


def test_param_groups_decay_rules_and_multipliers():
    model = WithEmbedding()
    specs = [ParamGroupSpec("encoder", [*model.emb.parameters(), *model.norm.parameters(), *model.body.parameters()], 0.1),
             ParamGroupSpec("head", model.head, 1.0)]
    opt, by_name = build_optimizer(model, lr=1e-3, weight_decay=0.05, specs=specs)
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"encoder", "encoder.no_decay", "head", "head.no_decay"}
    assert groups["encoder"]["params"] == [model.body.weight]  # embedding, norm and biases: no decay
    assert {id(p) for p in groups["encoder.no_decay"]["params"]} == {
        id(model.emb.weight), id(model.norm.weight), id(model.norm.bias), id(model.body.bias)}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4) and groups["head"]["lr"] == pytest.approx(1e-3)
    assert groups["encoder"]["weight_decay"] == 0.05 and groups["encoder.no_decay"]["weight_decay"] == 0.0
    assert all(p.requires_grad for g in opt.param_groups for p in g["params"])  # frozen params left out
    assert list(by_name) == ["encoder", "head"]

    opt2, _ = build_optimizer(model, 1e-3, 0.05, decay_embeddings=True)
    decayed = {id(p) for g in opt2.param_groups if not g["name"].endswith("no_decay") for p in g["params"]}
    assert id(model.emb.weight) in decayed
    assert {g["name"] for g in opt2.param_groups} == {"other", "other.no_decay"}  # unnamed params land in "other"


def test_param_group_errors():
    model = WithEmbedding()
    with pytest.raises(ConfigError, match="both groups"):
        build_optimizer(model, 1e-3, 0.0, [ParamGroupSpec("a", model.head), ParamGroupSpec("b", model.head)])
    with pytest.raises(ConfigError, match="unique"):
        build_optimizer(model, 1e-3, 0.0, [ParamGroupSpec("a", model.head), ParamGroupSpec("a", model.body)])
    frozen = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        build_optimizer(frozen, 1e-3, 0.0)


def test_warmup_then_linear_decay():
    f = warmup_linear(total_steps=20, warmup_ratio=0.1)  # 2 warmup steps
    values = [f(s) for s in range(21)]
    assert values[0] == pytest.approx(1 / 3) and values[1] == pytest.approx(2 / 3)
    assert values[2] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values[2:20], values[3:21]))
    assert values[20] == 0.0


# ---------------------------------------------------------------- a full run


def test_train_writes_contract_outputs_and_learns(tmp_path):
    result = run_toy(tmp_path)
    assert result.status == "ok" and result.stop_reason == "max_epochs"
    for name in (METRICS_FILE, HISTORY_FILE, METADATA_FILE, CHECKPOINT_FILE):
        assert (tmp_path / name).exists()
    assert not (tmp_path / COLLAPSE_FILE).exists()

    metrics = read_json(tmp_path / METRICS_FILE)
    assert list(metrics) == ["model", "seed", "status", "lr", "threshold", "best_epoch", "epochs_run", "test", "val"]
    assert list(metrics["test"]) == list(METRIC_NAMES) and list(metrics["val"]) == list(METRIC_NAMES)
    assert metrics["model"] == "toy" and metrics["status"] == "ok" and metrics["epochs_run"] == 3
    assert metrics["test"]["f1"] > 0.7 and metrics["test"]["roc_auc"] > 0.9  # learned (chance: 0.5 AUC)

    with open(tmp_path / HISTORY_FILE, newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header[:len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS == tuple(CONTRACT_COLUMNS)
    assert header[len(CONTRACT_COLUMNS):] == ["grad_norm_max", "optimizer_steps", "grad_norm_other"]
    history = read_history(tmp_path / HISTORY_FILE)
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert all(int(r["optimizer_steps"]) == 8 and int(r["skipped_steps"]) == 0 for r in history)
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    lrs = [float(r["lr"]) for r in history]
    assert lrs[0] > lrs[1] > lrs[2]  # linear decay after warmup

    meta = read_json(tmp_path / METADATA_FILE)
    assert meta["status"] == "ok" and meta["dataset_hash"] == "hash-1"
    assert meta["config_sources"] == {"model.hidden": "params.yaml"}
    assert meta["config"]["train"]["lr"] == 0.03 and meta["config"]["run"] == {"model": {"hidden": 16}}
    assert set(meta["versions"]) == {"python", "torch", "transformers", "torch_geometric", "sklearn", "numpy"}
    assert meta["device"]["type"] == "cpu" and meta["amp"]["dtype"] == "fp32"
    assert meta["seeds"] == {"run": 0}
    assert "timings" not in meta and "git_commit" not in meta  # run-varying: in run_log.json

    best = load_best_weights(tmp_path / CHECKPOINT_FILE)
    ckpt = load_torch(tmp_path / CHECKPOINT_FILE)
    assert ckpt["stop_reason"] == "max_epochs" and "optimizer" not in ckpt  # final checkpoint is slim
    assert set(best) == set(MLP().state_dict())


def test_threshold_is_tuned_on_val_and_applied_to_test(tmp_path):
    result = run_toy(tmp_path)
    threshold = result.metrics["threshold"]
    assert 0.0 < threshold < 1.0
    assert result.metrics["test"] == compute_metrics(result.test.labels, result.test.probs, threshold)
    assert result.metrics["val"] == compute_metrics(result.val.labels, result.val.probs, threshold)
    assert result.metrics["val"]["f1"] >= compute_metrics(result.val.labels, result.val.probs, 0.5)["f1"]


def test_same_seed_is_bit_identical_other_seed_is_not(tmp_path):
    a = run_toy(tmp_path / "a", seed=5)
    b = run_toy(tmp_path / "b", seed=5)
    c = run_toy(tmp_path / "c", seed=6)
    assert outcome(a) == outcome(b)
    assert outcome(a) != outcome(c)
    wa, wb = load_best_weights(tmp_path / "a" / CHECKPOINT_FILE), load_best_weights(tmp_path / "b" / CHECKPOINT_FILE)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    cfg = LoopConfig(epochs=10, lr=1e-2, patience=2, min_delta=10.0)  # only the first epoch can "improve"
    result = run_toy(tmp_path, cfg=cfg)
    assert result.stop_reason == "early_stopping"
    assert result.metrics["best_epoch"] == 1 and result.metrics["epochs_run"] == 3
    meta = read_json(tmp_path / METADATA_FILE)
    assert meta["stop_reason"] == "early_stopping"


def test_monitor_val_loss_and_short_names():
    assert LoopConfig(monitor="f1").monitor == "val_f1"
    assert LoopConfig(monitor="loss").monitor == "val_loss"
    with pytest.raises(ConfigError, match="train.monitor"):
        LoopConfig(monitor="val_bogus").validate()
    with pytest.raises(ConfigError, match="train.grad_accum"):
        LoopConfig(grad_accum=0).validate()


def _one_epoch_params(batch_sampler=None, batch_size=None, accum=1, n=12):
    seed_everything(0)
    model = MLP(dropout=0.0)
    ds = ToyDataset(n)
    train_loader = make_loader(ds, batch_size, shuffle=False, seed=0, batch_sampler=batch_sampler)
    loaders = {"train": train_loader, "val": make_loader(ds, 4, seed=0)}
    cfg = LoopConfig(epochs=1, lr=1e-2, warmup_ratio=0.0, grad_accum=accum, weight_decay=0.0)
    trainer = Trainer(model, loaders, make_loss("bce"), cfg, "unused-dir", RunInfo("toy", 0))
    stats = trainer.train_epoch()
    return {k: v.clone() for k, v in model.state_dict().items()}, stats


def test_gradient_accumulation_matches_the_large_batch():
    # 12 samples: 3 micro-batches of 4 with accumulation 2 -> windows of 2 and 1 micro-batches,
    # the same updates as batches of 8 and 4 without accumulation.
    accumulated, stats = _one_epoch_params(batch_size=4, accum=2)
    large, _ = _one_epoch_params(batch_sampler=[list(range(8)), list(range(8, 12))])
    plain, _ = _one_epoch_params(batch_size=4, accum=1)
    assert stats.steps == 2 and stats.samples == 12
    for key in large:
        torch.testing.assert_close(accumulated[key], large[key], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(plain[k], large[k]) for k in large)


def test_clipping_bounds_the_norm_and_logs_before_and_after(tmp_path):
    result = run_toy(tmp_path, cfg=LoopConfig(epochs=1, lr=1e-3, max_grad_norm=0.01))
    row = result.history[0]
    assert row["grad_norm_before_clip"] > 0.01
    assert row["grad_norm_after_clip"] == pytest.approx(0.01, rel=1e-3)


def test_param_group_grad_norms_are_logged_per_epoch(tmp_path):
    def groups(model):
        return [ParamGroupSpec("body", model.net[:2], 0.5), ParamGroupSpec("head", model.net[4], 1.0)]

    result = run_toy(tmp_path, param_groups=groups, cfg=LoopConfig(epochs=2, lr=1e-2, warmup_ratio=0.0))
    for row in result.history:
        assert row["grad_norm_body"] > 0 and row["grad_norm_head"] > 0
        # per step, total^2 = body^2 + head^2; the epoch means keep total >= each part
        assert row["grad_norm_before_clip"] >= max(row["grad_norm_body"], row["grad_norm_head"]) - 1e-9
    header = next(csv.reader(open(tmp_path / HISTORY_FILE)))
    assert header[-2:] == ["grad_norm_body", "grad_norm_head"]
    meta = read_json(tmp_path / METADATA_FILE)
    mults = {g["name"]: g["lr_mult"] for g in meta["optimizer"]["groups"]}
    assert mults == {"body": 0.5, "body.no_decay": 0.5, "head": 1.0, "head.no_decay": 1.0}
    # the LR of a multiplier-1 group at the epoch's last step (8 of 16 steps, no warmup)
    assert result.history[0]["lr"] == pytest.approx(1e-2 * warmup_linear(16, 0.0)(7))


class BadShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)

    def forward(self, batch):
        return self.lin(batch["x"])  # [B, 1] breaks the contract


def test_model_returning_wrong_shape_gets_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"BadShape\(batch\) must return one logit per sample"):
        run_toy(tmp_path, model=BadShape())


class PygNet(nn.Module):
    def __init__(self):
        super().__init__()
        from torch_geometric.nn import GCNConv, global_mean_pool

        self.conv, self.pool = GCNConv(4, 8), global_mean_pool
        self.head = nn.Linear(8, 1)

    def forward(self, batch):
        h = torch.relu(self.conv(batch.x, batch.edge_index))
        return self.head(self.pool(h, batch.batch)).squeeze(-1)


class GraphSet(Dataset):
    def __init__(self, n, seed):
        from torch_geometric.data import Data

        gen = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            label = i % 2
            nodes = 3 + i % 4
            x = torch.randn(nodes, 4, generator=gen) + (1.5 if label else -1.5)
            edge_index = torch.stack([torch.arange(nodes - 1), torch.arange(1, nodes)])
            self.items.append(Data(x=x, edge_index=edge_index, y=torch.tensor([float(label)])))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_trains_a_pyg_model(tmp_path):
    seed_everything(0)
    loaders = {split: make_loader(GraphSet(32, s), 8, shuffle=split == "train", seed=0)
               for s, split in enumerate(("train", "val", "test"))}
    result = train(PygNet(), loaders, make_loss("bce"), LoopConfig(epochs=2, lr=1e-2), tmp_path, RunInfo("gnn", 0))
    assert result.status == "ok"
    assert result.metrics["test"]["roc_auc"] > 0.9
    assert len(result.test.labels) == 32


def test_progress_bar_only_on_a_terminal_outside_ci(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("CI", "true")
    assert show_progress(LoopConfig()) is False
    monkeypatch.delenv("CI")
    assert show_progress(LoopConfig()) is True
    assert show_progress(LoopConfig(progress=False)) is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert show_progress(LoopConfig()) is False
    assert show_progress(LoopConfig(progress=True)) is True


def test_bf16_autocast_on_cpu_trains(tmp_path):
    result = run_toy(tmp_path, cfg=LoopConfig(epochs=2, lr=1e-2, amp="bf16"))
    assert result.status == "ok"
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    assert read_json(tmp_path / METADATA_FILE)["amp"]["dtype"] == "bf16"
