"""The GNN kind: the taint-flow GNN over statement graphs (PyTorch Geometric)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import bounded
from ..data.datasets import graph_collate
from ..graphs.graph import EDGE_TYPES
from ..graphs.store import graph_statistics
from ..io import write_json_atomic
from ..models.gnn import TaintFlowGNN
from ..train.losses import make_loss
from .base import ModelKind


@dataclass(frozen=True)
class GNNConfig:
    hidden_size: int = bounded(64, 8)
    num_layers: int = bounded(3, 1, 16)
    conv: Literal["rgcn", "gine", "ggnn"] = "gine"  # rgcn is ~10x slower on CPU (per-relation loop)
    pooling: Literal["attention", "meanmax"] = "attention"
    embed_norm: Literal["none", "batch", "layer"] = "none"  # normalisation of the graph embedding before the head
    dropout: float = bounded(0.1, 0.0, 0.9)
    batch_size: int = bounded(64, 1)
    grad_accum: int = bounded(1, 1)
    epochs: int = bounded(30, 1)
    patience: int = bounded(8, 1)
    # Quick runs see few steps per epoch: a range above the plan's 1e-4..1e-3 (production profile),
    # chosen on the quick data's validation split (conf/config.yaml).
    lr_min: float = bounded(2e-3, 0.0, 1.0, lo_open=True)
    lr_max: float = bounded(8e-3, 0.0, 1.0, lo_open=True)
    warmup_ratio: float = bounded(0.1, 0.0, 0.5)
    weight_decay: float = bounded(1e-4, 0.0, 1.0)
    max_grad_norm: float = bounded(1.0, 0.0, lo_open=True)
    focal_gamma: float = bounded(1.5, 0.0, 10.0)
    balanced_sampler: bool = True


class GNNKind(ModelKind):
    name = "gnn"
    order = 20
    section = GNNConfig
    output_dir = "gnn_v17"
    batch_limits = {"h100": 256, "a100": 256, "l4": 128, "v100": 128, "t4": 128, "cuda": 128, "mps": 64, "cpu": 256}
    inputs = ("graph",)

    def branch_spec(self, g: GNNConfig, data) -> dict:
        vocab = data.vocab
        return {"n_kinds": len(vocab["kinds"]), "n_feats": len(vocab["features"]), "n_tokens": data.vocab_size(),
                "n_edge_types": len(EDGE_TYPES), "hidden": g.hidden_size, "num_layers": g.num_layers,
                "conv": g.conv, "pooling": g.pooling, "dropout": g.dropout, "pad_token": data.pad_id,
                "embed_norm": g.embed_norm}

    def build_branch(self, s: dict) -> TaintFlowGNN:
        return TaintFlowGNN(**s)

    def spec(self, cfg, data) -> dict:
        return {"kind": self.name, "gnn": self.branch_spec(cfg.gnn, data)}

    def build(self, spec) -> TaintFlowGNN:
        return self.build_branch(spec["gnn"])

    def dataset(self, data, split: str):
        return data.graphs(split)

    def collate(self, pad_id: int):
        return graph_collate

    def batch(self, tokens, graph, lexical=None):
        return graph

    def loss(self, section: GNNConfig, weighting):
        # Focal loss; class balance comes from the sampler, or from alpha (the negative share) when it is off.
        ratio = weighting["class_ratio"] * weighting["vuln_multiplier"]
        alpha = None if weighting["balanced_sampler"] else ratio / (1.0 + ratio)
        return make_loss("focal", focal_gamma=section.focal_gamma, focal_alpha=alpha)

    def extra_outputs(self, data, out_dir) -> None:
        write_json_atomic(out_dir / "graph_statistics.json",
                          {split: graph_statistics(data.graphs(split).packed) for split in ("train", "valid", "test")})


KIND = GNNKind()
