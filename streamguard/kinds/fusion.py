"""The fusion kind: transformer and GNN embeddings joined by an MLP, trained with discriminative LRs.

With `lexical` (default) it also reads the lexical view prepare writes (the TF-IDF + LR logit,
out-of-fold on train) and adds it to its logit with a learned weight (models/fusion.py).

It starts from the same seed's trained branches (`backbones`) and writes out-of-fold predictions on
the training split from fold models trained from scratch (`out_of_fold`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import bounded
from ..data.datasets import FusionCollator
from ..models.fusion import FusionModel
from ..train.engine import ParamGroupSpec
from .base import ModelKind


@dataclass(frozen=True)
class FusionConfig:
    hidden_size: int = bounded(64, 8)
    dropout: float = bounded(0.1, 0.0, 0.9)
    batch_size: int = bounded(32, 1)
    grad_accum: int = bounded(2, 1)
    epochs: int = bounded(4, 1)
    patience: int = bounded(3, 1)
    base_lr: float = bounded(1e-3, 0.0, 1.0, lo_open=True)
    # Discriminative LRs: multipliers of base_lr per component.
    lr_mult_transformer: float = bounded(0.1, 0.0, 10.0)
    lr_mult_gnn: float = bounded(0.5, 0.0, 10.0)
    lr_mult_fusion: float = bounded(1.0, 0.0, 10.0, lo_open=True)
    warmup_ratio: float = bounded(0.1, 0.0, 0.5)
    weight_decay: float = bounded(0.01, 0.0, 1.0)
    max_grad_norm: float = bounded(1.0, 0.0, lo_open=True)
    oof_folds: int = bounded(3, 2, 20)
    oof_epochs: int = bounded(8, 1)
    lexical: bool = True  # the TF-IDF + LR logit as a third input (needs lexical.enabled at prepare)


class FusionKind(ModelKind):
    name = "fusion"
    order = 30
    section = FusionConfig
    output_dir = "fusion_v17"
    batch_limits = {"h100": 32, "a100": 32, "l4": 8, "v100": 8, "t4": 8, "cuda": 8, "mps": 8, "cpu": 32}
    inputs = ("tokens", "graph", "lexical")
    uses_lr_finder = False
    backbones = ("transformer", "gnn")
    out_of_fold = True

    def _branches(self):
        from . import get_kind  # the registry imports this module

        return get_kind("transformer"), get_kind("gnn")

    def spec(self, cfg, data) -> dict:
        t, g = self._branches()
        if cfg.fusion.lexical:
            data.lexical("train")  # a one-line error naming the missing file, before any training
        return {"kind": self.name, "transformer": t.branch_spec(cfg.transformer, data),
                "gnn": g.branch_spec(cfg.gnn, data), "hidden": cfg.fusion.hidden_size, "dropout": cfg.fusion.dropout,
                "lexical": cfg.fusion.lexical}

    def build(self, spec) -> FusionModel:
        t, g = self._branches()
        return FusionModel(t.build_branch(spec["transformer"]), g.build_branch(spec["gnn"]), spec["hidden"], spec["dropout"],
                           lexical=spec.get("lexical", False))

    def dataset(self, data, split: str):
        # The lexical logits ride along whenever prepare wrote them; a model without the view ignores them.
        return data.fusion(split, lexical=data.has_lexical)

    def collate(self, pad_id: int):
        return FusionCollator(pad_id)

    def batch(self, tokens, graph, lexical=None):
        batch = {"tokens": tokens, "graph": graph}
        if lexical is not None:
            batch["lexical"] = lexical
        return batch

    def learning_rate(self, section: FusionConfig) -> float:
        return section.base_lr

    def param_groups(self, model: FusionModel, section: FusionConfig) -> list[ParamGroupSpec]:
        mults = {"transformer": section.lr_mult_transformer, "gnn": section.lr_mult_gnn, "fusion": section.lr_mult_fusion}
        return [ParamGroupSpec(name, module, mults[name]) for name, module in model.component_modules().items()]

    def load_backbones(self, model: FusionModel, weights) -> None:
        model.transformer.load_state_dict(weights["transformer"])
        model.gnn.load_state_dict(weights["gnn"])


KIND = FusionKind()
