"""The transformer kind: a RoBERTa-style encoder over code tokens (from config, or pretrained)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from ..config import bounded
from ..data.datasets import TokenCollator
from ..errors import ConfigError
from ..models.mlm import load_trunk
from ..models.transformer import TransformerClassifier, build_encoder
from .base import ModelKind


@dataclass(frozen=True)
class TransformerConfig:
    pretrained: Optional[str] = None  # local path or hub id; None builds a small model from config
    hidden_size: int = bounded(64, 8)
    num_layers: int = bounded(2, 1, 48)
    num_heads: int = bounded(4, 1)
    intermediate_size: int = bounded(128, 8)
    dropout: float = bounded(0.1, 0.0, 0.9)
    conv_kernel: int = bounded(5, 0, 31)  # odd width of the n-gram stem over the embeddings; 0: none
    pooling: Literal["mean", "max"] = "max"  # of the token states into one embedding
    batch_size: int = bounded(16, 1)
    grad_accum: int = bounded(1, 1)
    epochs: int = bounded(12, 1)
    patience: int = bounded(4, 1)
    # A small model trained from scratch needs a higher LR than the plan's fine-tuning range
    # (1e-5..5e-5, used by the production profile); its middle, 5e-4, is the quick data's best on validation.
    lr_min: float = bounded(2.5e-4, 0.0, 1.0, lo_open=True)
    lr_max: float = bounded(1e-3, 0.0, 1.0, lo_open=True)
    warmup_ratio: float = bounded(0.1, 0.0, 0.5)
    weight_decay: float = bounded(0.01, 0.0, 1.0)
    max_grad_norm: float = bounded(1.0, 0.0, lo_open=True)
    loss_weighting: Literal["inverse_frequency", "none"] = "inverse_frequency"
    balanced_sampler: bool = False
    vuln_multiplier: float = bounded(1.0, 0.0, lo_open=True)


class TransformerKind(ModelKind):
    name = "transformer"
    order = 10
    section = TransformerConfig
    output_dir = "transformer_v17"
    # Per-step batches for a 12-layer, 512-token encoder with the profile's AMP dtype, with headroom.
    batch_limits = {"h100": 64, "a100": 64, "l4": 16, "v100": 16, "t4": 16, "cuda": 16, "mps": 16, "cpu": 64}
    inputs = ("tokens",)
    starts_from_pretrain = True

    def branch_spec(self, t: TransformerConfig, data) -> dict:
        return {"vocab_size": data.vocab_size(), "pad_id": data.pad_id, "max_length": data.meta["max_length"],
                "hidden_size": t.hidden_size, "num_layers": t.num_layers, "num_heads": t.num_heads,
                "intermediate_size": t.intermediate_size, "dropout": t.dropout, "pretrained": t.pretrained,
                "conv_kernel": t.conv_kernel, "pooling": t.pooling, "flow_tags": data.flow_tag_values}

    def build_branch(self, s: dict) -> TransformerClassifier:
        enc = build_encoder(s["vocab_size"], s["pad_id"], s["max_length"], s["hidden_size"], s["num_layers"],
                            s["num_heads"], s["intermediate_size"], s["dropout"], s["pretrained"],
                            s.get("hf_config"))
        # Specs written before the stem, the pooling choice and flow tags existed: none, mean pooling.
        return TransformerClassifier(enc, s["dropout"], s.get("conv_kernel", 0), s.get("pooling", "mean"),
                                     s.get("flow_tags", 0))

    def spec(self, cfg, data) -> dict:
        return {"kind": self.name, "transformer": self.branch_spec(cfg.transformer, data)}

    def build(self, spec) -> TransformerClassifier:
        return self.build_branch(spec["transformer"])

    def load_pretrained(self, model: TransformerClassifier, state) -> None:
        load_trunk(model, dict(state))

    def dataset(self, data, split: str):
        return data.tokens(split)

    def collate(self, pad_id: int):
        return TokenCollator(pad_id)

    def batch(self, tokens, graph, lexical=None):
        return tokens

    def validate(self, cfg) -> None:
        t = cfg.transformer
        if t.pretrained is None and t.hidden_size % t.num_heads:
            raise ConfigError(f"params.yaml: 'transformer.hidden_size' ({t.hidden_size}) must be divisible by "
                              f"'transformer.num_heads' ({t.num_heads})")
        if t.conv_kernel % 2 == 0 and t.conv_kernel:
            raise ConfigError(f"params.yaml: 'transformer.conv_kernel' must be odd (or 0 for none), got {t.conv_kernel}")
        if t.pretrained and cfg.tokenizer.kind != "pretrained":
            raise ConfigError("params.yaml: 'transformer.pretrained' needs its own tokenizer: set 'tokenizer.kind: pretrained' "
                              "and 'tokenizer.pretrained' to the same checkpoint")


KIND = TransformerKind()
