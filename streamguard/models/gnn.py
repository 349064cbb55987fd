"""Taint-flow GNN over statement graphs (PyTorch Geometric).

Node encoder (DeepDFA-style abstract features): statement-kind embedding + sum of API/operator/literal
feature embeddings + projected source/sink/sanitizer/tainted flags + mean of statement token embeddings
+ AST depth embedding. Message passing runs over the typed edges (AST, CFG seq/branch/loop, data
dependence, taint), each also used in reverse as a relation of its own so information flows both ways:
`rgcn` (a weight per relation) and `gine` (a learned edge embedding per relation) read the edge type
and direction; `ggnn` (gated updates) sees the same edges untyped. Pooling is attentional or mean+max;
a small head gives one logit per graph.
"""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GatedGraphConv, GINEConv, RGCNConv, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

MAX_DEPTH = 32


class NodeEncoder(nn.Module):
    def __init__(self, n_kinds: int, n_feats: int, n_tokens: int, n_flags: int, hidden: int, pad_token: int):
        super().__init__()
        self.kind = nn.Embedding(n_kinds, hidden)
        self.feat = nn.Embedding(n_feats, hidden, padding_idx=0)
        self.tok = nn.Embedding(n_tokens, hidden, padding_idx=pad_token)
        self.depth = nn.Embedding(MAX_DEPTH, hidden)
        self.flags = nn.Linear(n_flags, hidden)
        self.pad_token = pad_token
        self.norm = nn.LayerNorm(hidden)

    def forward(self, data) -> torch.Tensor:
        tok_mask = (data.x_tok != self.pad_token).unsqueeze(-1).float()
        tok = (self.tok(data.x_tok) * tok_mask).sum(1) / tok_mask.sum(1).clamp(min=1.0)
        h = (self.kind(data.x_kind) + self.feat(data.x_feat).sum(1) + self.flags(data.x_flags)
             + tok + self.depth(data.depth.clamp(0, MAX_DEPTH - 1)))
        return self.norm(h)


class TaintFlowGNN(nn.Module):
    """encode(batch) -> [B, H] graph embedding; forward(batch) -> logits [B]."""

    def __init__(self, n_kinds: int, n_feats: int, n_tokens: int, n_edge_types: int, hidden: int = 64,
                 num_layers: int = 3, conv: str = "rgcn", pooling: str = "attention", dropout: float = 0.1,
                 n_flags: int = 4, pad_token: int = 0, embed_norm: str = "none"):
        super().__init__()
        self.n_edge_types = n_edge_types
        self.conv_kind = conv
        self.encoder = NodeEncoder(n_kinds, n_feats, n_tokens, n_flags, hidden, pad_token)
        n_rel = 2 * n_edge_types  # forward and reverse of every edge type
        if conv == "rgcn":
            self.convs = nn.ModuleList(RGCNConv(hidden, hidden, n_rel, num_bases=min(n_rel, 4)) for _ in range(num_layers))
        elif conv == "gine":
            self.edge_emb = nn.Embedding(n_rel, hidden)
            self.convs = nn.ModuleList(
                GINEConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), edge_dim=hidden)
                for _ in range(num_layers))
        elif conv == "ggnn":
            self.convs = nn.ModuleList([GatedGraphConv(hidden, num_layers)])
        else:
            raise ValueError(f"unknown conv {conv!r}")
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in self.convs)
        self.dropout = nn.Dropout(dropout)
        if pooling == "attention":
            self.pool = AttentionalAggregation(nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)))
            self.out_dim = hidden
        elif pooling == "meanmax":
            self.pool = None
            self.out_dim = 2 * hidden
        else:
            raise ValueError(f"unknown pooling {pooling!r}")
        # Normalising the pooled embedding before the head: Devign GGNN reimplementations stuck at loss
        # 0.69 trained once BatchNorm sat there. The fusion reads the same normalised embedding.
        if embed_norm == "batch":
            self.embed_norm = nn.BatchNorm1d(self.out_dim)
        elif embed_norm == "layer":
            self.embed_norm = nn.LayerNorm(self.out_dim)
        elif embed_norm == "none":
            self.embed_norm = None
        else:
            raise ValueError(f"unknown embed_norm {embed_norm!r}")
        self.head = nn.Sequential(nn.Linear(self.out_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def _edges(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        ei, et = data.edge_index, data.edge_type
        return torch.cat([ei, ei.flip(0)], 1), torch.cat([et, et + self.n_edge_types])

    def encode(self, data) -> torch.Tensor:
        h = self.encoder(data)
        edge_index, edge_type = self._edges(data)
        for conv, norm in zip(self.convs, self.norms):
            if self.conv_kind == "rgcn":
                m = conv(h, edge_index, edge_type)
            elif self.conv_kind == "gine":
                m = conv(h, edge_index, self.edge_emb(edge_type))
            else:
                m = conv(h, edge_index)
            h = norm(h + self.dropout(torch.relu(m)))  # residual keeps deep stacks trainable
        if self.pool is not None:
            g = self.pool(h, data.batch)
        else:
            g = torch.cat([global_mean_pool(h, data.batch), global_max_pool(h, data.batch)], 1)
        if isinstance(self.embed_norm, nn.BatchNorm1d) and self.training and g.size(0) < 2:
            # a one-graph batch has no batch statistics: use the running ones for it
            n = self.embed_norm
            return nn.functional.batch_norm(g, n.running_mean, n.running_var, n.weight, n.bias, training=False, eps=n.eps)
        return self.embed_norm(g) if self.embed_norm is not None else g

    def forward(self, data) -> torch.Tensor:
        return self.head(self.encode(data)).squeeze(-1)
