"""The model-kind registry: a new kind is one module. A toy kind registered here trains through the real
engine, the real run orchestration and the real output files without touching any other module."""
from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import pytest
import torch
from torch import nn

from streamguard import kinds, runs
from streamguard.config import bounded
from streamguard.data.datasets import TokenCollator
from streamguard.errors import ConfigError
from streamguard.io import read_json
from streamguard.train.checkpoint import load_model_spec

from .fixtures import make_processed, tiny_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class BagConfig:
    embedding: int = bounded(16, 2)
    lr: float = bounded(5e-3, 0.0, 1.0, lo_open=True)
    batch_size: int = bounded(16, 1)
    grad_accum: int = bounded(1, 1)
    epochs: int = bounded(2, 1)
    patience: int = bounded(2, 1)
    warmup_ratio: float = bounded(0.0, 0.0, 0.5)
    weight_decay: float = bounded(0.0, 0.0, 1.0)
    max_grad_norm: float = bounded(1.0, 0.0, lo_open=True)


class BagOfTokens(nn.Module):
    def __init__(self, vocab_size: int, embedding: int):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, embedding, mode="sum")
        self.head = nn.Linear(embedding, 1)

    def forward(self, batch: dict) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        # Padding positions are zeroed weights, so the mean covers real tokens only.
        weights = mask.to(torch.float32) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.head(self.bag(ids, per_sample_weights=weights)).squeeze(-1)


class BagKind(kinds.ModelKind):
    name = "bag"
    section = BagConfig
    output_dir = "bag_v17"
    uses_lr_finder = False

    def spec(self, cfg, data):
        return {"kind": self.name, "vocab_size": data.vocab_size(), "embedding": cfg.bag.embedding}

    def build(self, spec):
        return BagOfTokens(spec["vocab_size"], spec["embedding"])

    def dataset(self, data, split):
        return data.tokens(split)

    def collate(self, pad_id):
        return TokenCollator(pad_id)

    def batch(self, tokens, graph):
        return tokens

    def learning_rate(self, section):
        return section.lr


@pytest.fixture
def bag_kind():
    kinds.register(BagKind())
    yield kinds.get_kind("bag")
    kinds.unregister("bag")


def test_a_registered_toy_kind_trains_through_the_real_engine(bag_kind, tmp_path):
    processed, _ = make_processed(tmp_path)
    cfg = tiny_config(**{"bag.epochs": 3, "bag.embedding": 8})  # its params.yaml section validates like any other
    assert cfg.bag.embedding == 8 and cfg.sources["bag.embedding"] == "params.yaml"
    result = runs.train_run("bag", cfg, 42, tmp_path / "outputs", processed)
    out = tmp_path / "outputs" / "bag_v17" / "seed_42"
    assert result.status == "ok" and result.metrics["epochs_run"] == 3
    metrics = read_json(out / "metrics.json")
    assert metrics["model"] == "bag_v17" and metrics["lr"] == 5e-3 and metrics["test"]["roc_auc"] is not None
    assert read_json(out / "training_metadata.json")["config"]["run"]["bag"]["embedding"] == 8
    spec = load_model_spec(out / "model_checkpoint.pt")  # the checkpoint alone rebuilds the model
    assert spec == {"kind": "bag", "vocab_size": spec["vocab_size"], "embedding": 8}
    assert isinstance(kinds.build_model(spec), BagOfTokens)


def test_a_toy_section_is_checked_like_the_builtin_ones(bag_kind):
    with pytest.raises(ConfigError, match="'bag.embedding' must be >= 2, got 1"):
        tiny_config(**{"bag.embedding": 1})
    with pytest.raises(ConfigError, match="unknown key 'bag.embeding' \\(did you mean 'embedding'\\?\\)"):
        tiny_config(**{"bag.embeding": 4})


def test_unknown_kind_is_one_line_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown model kind 'lstm'; known kinds: transformer, gnn, fusion$"):
        kinds.get_kind("lstm")
    with pytest.raises(ConfigError, match="unknown model kind 'lstm'"):
        kinds.build_model({"kind": "lstm"})
    with pytest.raises(ConfigError, match="without a 'kind'"):
        kinds.build_model({"hidden": 3})
    proc = subprocess.run([sys.executable, "stages/train.py", "lstm", "42"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown model kind 'lstm'; known kinds: transformer, gnn, fusion"


def test_builtin_kinds_train_after_their_backbones():
    names = kinds.kind_names()
    for name in names:
        for backbone in kinds.get_kind(name).backbones:
            assert names.index(backbone) < names.index(name), (name, backbone)
