"""Packed graph tensors on disk (weights_only-safe) <-> PyG `Data`, and dataset-level statistics.

`pack_graphs(encoded, labels)` concatenates the per-graph tensors of `features.encode_graph`:

    node-level  x_kind [N], x_feat [N, K], x_flags [N, 4], x_tok [N, T], depth [N]
    edge-level  edge_index [2, E] (node indices local to each graph), edge_type [E]
    per graph   node_ptr [G+1], edge_ptr [G+1] (offsets), y [G]

The dict holds tensors only, so `io.save_torch_atomic` / `io.load_torch` (weights_only=True)
round-trip it. `GraphStore(packed)` is a torch Dataset whose items are
`torch_geometric.data.Data` objects with the same attribute names, `num_nodes` and `y` (shape
[1]); batch them with `torch_geometric.loader.DataLoader`, which offsets `edge_index` and builds
`batch.batch`.
"""
from __future__ import annotations

import os
import statistics
from typing import Any, Sequence

import torch
from torch_geometric.data import Data

from ..errors import DataError
from ..io import load_torch
from .graph import EDGE_TYPES
from .features import FLAG_NAMES

NODE_KEYS = ("x_kind", "x_feat", "x_flags", "x_tok", "depth")
EDGE_KEYS = ("edge_index", "edge_type")
PACKED_KEYS = NODE_KEYS + EDGE_KEYS + ("node_ptr", "edge_ptr", "y")


def pack_graphs(encoded: Sequence[dict[str, torch.Tensor]], labels: Sequence[int]) -> dict[str, torch.Tensor]:
    """Concatenate encoded graphs into one dict of tensors (see the module docstring)."""
    if len(encoded) != len(labels):
        raise ValueError(f"{len(encoded)} graphs but {len(labels)} labels")
    for i, e in enumerate(encoded):
        missing = [k for k in NODE_KEYS + EDGE_KEYS if k not in e]
        if missing:
            raise ValueError(f"encoded graph {i} lacks {missing}")
    n_nodes = [int(e["x_kind"].shape[0]) for e in encoded]
    n_edges = [int(e["edge_type"].shape[0]) for e in encoded]
    packed: dict[str, torch.Tensor] = {}
    for k in NODE_KEYS + ("edge_type",):
        packed[k] = torch.cat([e[k] for e in encoded]) if encoded else torch.zeros(0, dtype=torch.long)
    packed["edge_index"] = (torch.cat([e["edge_index"] for e in encoded], dim=1) if encoded
                            else torch.zeros(2, 0, dtype=torch.long))
    if not encoded:
        packed["x_flags"] = torch.zeros(0, len(FLAG_NAMES), dtype=torch.float32)
    packed["node_ptr"] = torch.tensor([0] + n_nodes, dtype=torch.long).cumsum(0)
    packed["edge_ptr"] = torch.tensor([0] + n_edges, dtype=torch.long).cumsum(0)
    packed["y"] = torch.tensor(list(labels), dtype=torch.long)
    return packed


def _validate(packed: Any, path: object) -> None:
    if not isinstance(packed, dict):
        raise DataError("packed graphs must be a dict of tensors; re-run prepare", path)
    for k in PACKED_KEYS:
        if not isinstance(packed.get(k), torch.Tensor):
            raise DataError("missing or not a tensor; re-run prepare", path, field=k)
    g = packed["y"].shape[0]
    node_ptr, edge_ptr = packed["node_ptr"], packed["edge_ptr"]
    if node_ptr.shape != (g + 1,) or edge_ptr.shape != (g + 1,):
        raise DataError(f"node_ptr/edge_ptr must have {g + 1} entries for {g} graphs", path, field="node_ptr")
    n, e = int(node_ptr[-1]), int(edge_ptr[-1])
    for k in NODE_KEYS:
        if packed[k].shape[0] != n:
            raise DataError(f"has {packed[k].shape[0]} rows, node_ptr says {n}", path, field=k)
    if packed["edge_index"].shape != (2, e) or packed["edge_type"].shape != (e,):
        raise DataError(f"edge tensors do not match edge_ptr ({e} edges)", path, field="edge_index")


class GraphStore(torch.utils.data.Dataset):
    """Packed graphs as a Dataset of PyG `Data` objects."""

    def __init__(self, packed: dict[str, torch.Tensor], path: object = None):
        _validate(packed, path)
        self.packed = packed
        self._nodes = packed["node_ptr"].tolist()
        self._edges = packed["edge_ptr"].tolist()

    @classmethod
    def load(cls, path: str | os.PathLike) -> GraphStore:
        return cls(load_torch(path), path)

    def __len__(self) -> int:
        return len(self._nodes) - 1

    @property
    def labels(self) -> torch.Tensor:
        return self.packed["y"]

    def __getitem__(self, i: int) -> Data:
        if not -len(self) <= i < len(self):
            raise IndexError(f"graph index {i} out of range for {len(self)} graphs")
        i %= len(self)
        p = self.packed
        a, b = self._nodes[i], self._nodes[i + 1]
        c, d = self._edges[i], self._edges[i + 1]
        return Data(
            x_kind=p["x_kind"][a:b], x_feat=p["x_feat"][a:b], x_flags=p["x_flags"][a:b],
            x_tok=p["x_tok"][a:b], depth=p["depth"][a:b],
            edge_index=p["edge_index"][:, c:d], edge_type=p["edge_type"][c:d],
            y=p["y"][i:i + 1], num_nodes=b - a,
        )


def _summary(values: list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "median": None, "min": None, "max": None, "total": 0}
    return {"mean": sum(values) / len(values), "median": float(statistics.median(values)),
            "min": min(values), "max": max(values), "total": sum(values)}


def graph_statistics(packed: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Plain-JSON statistics of a packed split (for dataset_stats.json / graph_statistics.json)."""
    _validate(packed, None)
    g = int(packed["y"].shape[0])
    nodes = packed["node_ptr"].diff().tolist()
    edges = packed["edge_ptr"].diff().tolist()
    etype = packed["edge_type"]
    by_type = {}
    for t, name in enumerate(EDGE_TYPES):
        total = int((etype == t).sum())
        by_type[name] = {"total": total, "mean_per_graph": total / g if g else None}
    depth = packed["depth"].float()
    flags = packed["x_flags"]
    n = flags.shape[0]
    graph_of_node = torch.repeat_interleave(torch.arange(g), packed["node_ptr"].diff())
    with_sink = torch.zeros(g, dtype=torch.bool)
    with_sink[graph_of_node[flags[:, FLAG_NAMES.index("sink")] > 0]] = True
    graph_of_edge = torch.repeat_interleave(torch.arange(g), packed["edge_ptr"].diff())
    with_taint = torch.zeros(g, dtype=torch.bool)
    with_taint[graph_of_edge[etype == EDGE_TYPES.index("taint")]] = True
    # Graphs without statements were encoded as one placeholder node of kind <pad> (id 0).
    counts = packed["node_ptr"].diff()
    placeholder = torch.zeros(g, dtype=torch.bool)
    if n:
        placeholder = (counts == 1) & (packed["x_kind"][packed["node_ptr"][:-1].clamp(max=n - 1)] == 0)
    return {
        "count": g,
        "nodes": _summary(nodes),
        "edges": {**_summary(edges), "by_type": by_type},
        "depth": {"mean": float(depth.mean()) if n else None, "max": int(depth.max()) if n else None},
        "node_flags": {name: (float(flags[:, i].mean()) if n else None) for i, name in enumerate(FLAG_NAMES)},
        "graphs_with_sink": int(with_sink.sum()),
        "graphs_with_taint_edge": int(with_taint.sum()),
        "empty_graphs": int(placeholder.sum()),
        "labels": {str(k): int((packed["y"] == k).sum()) for k in sorted(set(packed["y"].tolist()))},
    }
