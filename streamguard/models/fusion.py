"""Fusion of the transformer and the taint-flow GNN.

Both branches' embeddings are concatenated and passed through a small fusion MLP. With `lexical`, the
batch also carries the lexical view's logit (the TF-IDF + LR baseline's, streamguard/data/lexical.py),
added to the head's logit with a learned weight that starts at 1: the fusion starts from the
baseline's ranking and learns what the branches add to it. `component_modules`
names the three components; the fusion kind (streamguard/kinds/fusion.py) turns them into parameter
groups with their own LR multipliers (discriminative LRs) for the training engine.
"""
from __future__ import annotations

import torch
from torch import nn

from .gnn import TaintFlowGNN
from .transformer import TransformerClassifier


class FusionModel(nn.Module):
    """encode(batch) -> [B, H]; forward(batch) -> logits [B]. batch = {"tokens": {...}, "graph": PyG Batch}."""

    def __init__(self, transformer: TransformerClassifier, gnn: TaintFlowGNN, hidden: int = 64, dropout: float = 0.1,
                 lexical: bool = False):
        super().__init__()
        self.transformer = transformer
        self.gnn = gnn
        self.fusion = nn.Sequential(
            nn.Linear(transformer.out_dim + gnn.out_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, 1)
        self.out_dim = hidden
        self.lexical_weight = nn.Parameter(torch.ones(())) if lexical else None
        # The branches' own heads are not used here: freeze them so no optimizer group holds dead weights.
        transformer.head.requires_grad_(False)
        gnn.head.requires_grad_(False)

    def encode(self, batch: dict) -> torch.Tensor:
        joined = torch.cat([self.transformer.encode(batch["tokens"]), self.gnn.encode(batch["graph"])], dim=1)
        return self.fusion(joined)

    def forward(self, batch: dict) -> torch.Tensor:
        logits = self.head(self.encode(batch)).squeeze(-1)
        if self.lexical_weight is not None:
            logits = logits + self.lexical_weight * batch["lexical"].to(logits.dtype)
        return logits

    def component_modules(self) -> dict[str, nn.Module]:
        """Named components for discriminative LRs and per-component gradient statistics.

        The branches' own classifier heads are unused in fusion and left out (no gradient reaches them).
        """
        return {
            "transformer": self.transformer.encoder,
            "gnn": nn.ModuleList([self.gnn.encoder, self.gnn.convs, self.gnn.norms]
                                 + ([self.gnn.pool] if self.gnn.pool is not None else [])
                                 + ([self.gnn.edge_emb] if hasattr(self.gnn, "edge_emb") else [])
                                 + ([self.gnn.embed_norm] if self.gnn.embed_norm is not None else [])),
            "fusion": nn.ParameterList([*self.fusion.parameters(), *self.head.parameters()]
                                       + ([self.lexical_weight] if self.lexical_weight is not None else [])),
        }
