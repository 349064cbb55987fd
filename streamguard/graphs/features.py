"""DeepDFA-style node features with train-only vocabularies; statement graph -> tensors.

Each statement node is described by
- its kind (`graph.STMT_KINDS`, a closed set: the kind vocabulary is fixed, not fitted);
- a bag of abstract features in one joint vocabulary: `api:<callee>`, `op:<operator>`,
  `lit:<literal kind>`, `type:<type name>` (APIs first, so they survive the slot limit);
- four flags: source, sink, sanitizer, tainted (also the token view's flow tags, `line_flow_tags`);
- the token ids of its text (from the caller's tokenizer) and its nesting depth.

`GraphVocab.fit(train_graphs, min_freq, max_size)` counts each feature once per node, keeps those
seen at least `min_freq` times, orders them by (-count, name) (deterministic: no `hash()`, no
set order), truncates to `max_size` and puts `<pad>` = 0 and `<unk>` = 1 in front. Anything not
in the vocabulary (an API never seen in train) maps to `<unk>`.

`encode_graph(...)` (or `encode_graphs` for a whole split) returns
    x_kind   Long[n]      kind id (0 = <pad> for the placeholder node)
    x_feat   Long[n, K]   feature ids, 0-padded, K = feat_slots
    x_flags  Float[n, 4]  FLAG_NAMES
    x_tok    Long[n, T]   statement token ids, padded with pad_id, T = max_stmt_tokens
    depth    Long[n]      nesting depth, clamped to max_depth
    edge_index Long[2, e], edge_type Long[e] (index into graph.EDGE_TYPES)
A graph without nodes encodes as one placeholder node (kind <pad>, no features, all-pad tokens,
no edges) so batching never meets an empty graph.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Callable, Iterable

import torch

from ..errors import DataError
from .graph import EDGE_TYPES, STMT_KINDS, StatementGraph, StmtNode
from .parallel import gc_paused

PAD, UNK = "<pad>", "<unk>"
CATEGORIES = ("api", "op", "lit", "type")  # feature prefixes, in slot priority order
PAD_ID, UNK_ID = 0, 1
FLAG_NAMES = ("source", "sink", "sanitizer", "tainted")
FLOW_TAG_VALUES = 1 << len(FLAG_NAMES)  # a flow tag: bit i set when flag i holds (0: none)
VOCAB_VERSION = 1


def node_flags(node: StmtNode) -> tuple[bool, bool, bool, bool]:
    """The node's FLAG_NAMES, in order."""
    return node.is_source, node.is_sink, node.is_sanitizer, node.is_tainted


def line_flow_tags(graph: StatementGraph) -> dict[int, int]:
    """1-based line -> flow tag of the statements that start on it (their flags OR-ed). Statements the
    node cap dropped have none, nor do lines inside a statement that starts earlier."""
    tags: dict[int, int] = {}
    for node in graph.nodes:
        tag = sum(bit << i for i, bit in enumerate(node_flags(node)))
        tags[node.line] = tags.get(node.line, 0) | tag
    return tags


def node_features(node: StmtNode) -> list[str]:
    """The abstract features of one statement, in priority order (APIs, operators, literals, types)."""
    return ([f"api:{a}" for a in node.apis] + [f"op:{o}" for o in node.operators]
            + [f"lit:{lit}" for lit in node.literal_kinds] + [f"type:{t}" for t in node.types])


@dataclasses.dataclass(frozen=True)
class GraphVocab:
    kinds: tuple[str, ...]
    features: tuple[str, ...]
    min_freq: int = 1
    max_size: int | None = None
    _kind_ids: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _feature_ids: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _by_category: dict[str, dict[str, int]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_kind_ids", {k: i for i, k in enumerate(self.kinds)})
        object.__setattr__(self, "_feature_ids", {f: i for i, f in enumerate(self.features)})
        # name -> id per category, so encoding never builds "api:<name>" strings
        by_cat: dict[str, dict[str, int]] = {c: {} for c in CATEGORIES}
        for i, f in enumerate(self.features):
            cat, sep, name = f.partition(":")
            if sep and cat in by_cat:
                by_cat[cat][name] = i
        object.__setattr__(self, "_by_category", by_cat)

    @classmethod
    def fit(cls, graphs: Iterable[StatementGraph], min_freq: int | None = 1, max_size: int | None = None) -> GraphVocab:
        """Vocabularies from the given (training) graphs only."""
        min_freq = 1 if min_freq is None else int(min_freq)
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        counts: Counter[str] = Counter()
        with gc_paused():
            for g in graphs:
                for node in g.nodes:
                    counts.update(node_features(node))  # each feature appears once per node
        kept = sorted((f for f, c in counts.items() if c >= min_freq), key=lambda f: (-counts[f], f))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kinds=(PAD, UNK) + STMT_KINDS, features=(PAD, UNK) + tuple(kept),
                   min_freq=min_freq, max_size=max_size)

    @property
    def num_kinds(self) -> int:
        return len(self.kinds)

    @property
    def num_features(self) -> int:
        return len(self.features)

    def kind_id(self, kind: str) -> int:
        return self._kind_ids.get(kind, UNK_ID)

    def feature_id(self, feature: str) -> int:
        return self._feature_ids.get(feature, UNK_ID)

    def node_feature_ids(self, node: StmtNode, slots: int) -> list[int]:
        """Distinct feature ids of a node in priority order, cut to `slots` (same as node_features)."""
        c = self._by_category
        api, op, lit, typ = c["api"], c["op"], c["lit"], c["type"]
        ids = dict.fromkeys([api.get(a, UNK_ID) for a in node.apis] + [op.get(o, UNK_ID) for o in node.operators]
                            + [lit.get(x, UNK_ID) for x in node.literal_kinds]
                            + [typ.get(t, UNK_ID) for t in node.types])
        return list(ids)[:slots]

    def to_dict(self) -> dict[str, Any]:
        return {"version": VOCAB_VERSION, "kinds": list(self.kinds), "features": list(self.features),
                "min_freq": self.min_freq, "max_size": self.max_size, "flags": list(FLAG_NAMES),
                "edge_types": list(EDGE_TYPES)}

    @classmethod
    def from_dict(cls, d: Any, path: object = None) -> GraphVocab:
        """Inverse of to_dict; a malformed vocabulary raises DataError naming the field."""
        if not isinstance(d, dict):
            raise DataError("graph vocabulary must be a JSON object; re-run prepare", path)
        if d.get("version") != VOCAB_VERSION:
            raise DataError(f"unsupported graph vocabulary version {d.get('version')!r} (expected "
                            f"{VOCAB_VERSION}); re-run prepare", path, field="version")
        for key in ("kinds", "features"):
            v = d.get(key)
            if not isinstance(v, list) or len(v) < 2 or v[:2] != [PAD, UNK] or not all(isinstance(x, str) for x in v):
                raise DataError(f"must be a list of strings starting with {PAD!r}, {UNK!r}; re-run prepare",
                                path, field=key)
        if list(d.get("edge_types", EDGE_TYPES)) != list(EDGE_TYPES):
            raise DataError(f"edge types {d.get('edge_types')} differ from this version's {list(EDGE_TYPES)}; "
                            "re-run prepare", path, field="edge_types")
        return cls(kinds=tuple(d["kinds"]), features=tuple(d["features"]),
                   min_freq=int(d.get("min_freq") or 1), max_size=d.get("max_size"))


def encode_graph(
    graph: StatementGraph,
    vocab: GraphVocab,
    token_fn: Callable[[str], list[int]],
    max_stmt_tokens: int,
    pad_id: int = 0,
    feat_slots: int = 8,
    max_depth: int = 31,
) -> dict[str, torch.Tensor]:
    """Tensors for one graph (see the module docstring)."""
    if max_stmt_tokens < 1 or feat_slots < 1:
        raise ValueError(f"max_stmt_tokens and feat_slots must be >= 1, got {max_stmt_tokens}, {feat_slots}")
    nodes = graph.nodes
    if not nodes:
        return {
            "x_kind": torch.zeros(1, dtype=torch.long),
            "x_feat": torch.zeros(1, feat_slots, dtype=torch.long),
            "x_flags": torch.zeros(1, len(FLAG_NAMES), dtype=torch.float32),
            "x_tok": torch.full((1, max_stmt_tokens), pad_id, dtype=torch.long),
            "depth": torch.zeros(1, dtype=torch.long),
            "edge_index": torch.zeros(2, 0, dtype=torch.long),
            "edge_type": torch.zeros(0, dtype=torch.long),
        }
    # One flat row per node, [kind, depth, K feature ids, T token ids], and one tensor for all of
    # them: far fewer tensor constructions than one per field (this runs for every graph).
    k, t_len = feat_slots, max_stmt_tokens
    rows: list[int] = []
    flags: list[bool] = []
    for node in nodes:
        ids = vocab.node_feature_ids(node, k)
        toks = list(token_fn(node.text))[:t_len]
        rows.append(vocab.kind_id(node.kind))
        rows.append(min(node.depth, max_depth))
        rows += ids
        rows += [PAD_ID] * (k - len(ids))
        rows += toks
        rows += [pad_id] * (t_len - len(toks))
        flags += node_flags(node)
    m = torch.tensor(rows, dtype=torch.long).view(len(nodes), 2 + k + t_len)
    e = torch.tensor([x for edge in graph.edges for x in edge], dtype=torch.long).view(-1, 3)
    return {
        "x_kind": m[:, 0].contiguous(),
        "x_feat": m[:, 2:2 + k].contiguous(),
        "x_flags": torch.tensor(flags, dtype=torch.float32).view(len(nodes), len(FLAG_NAMES)),
        "x_tok": m[:, 2 + k:].contiguous(),
        "depth": m[:, 1].contiguous(),
        "edge_index": e[:, :2].t().contiguous(),
        "edge_type": e[:, 2].contiguous(),
    }


def encode_graphs(graphs: Iterable[StatementGraph], vocab: GraphVocab, token_fn: Callable[[str], list[int]],
                  max_stmt_tokens: int, pad_id: int = 0, **kwargs: Any) -> list[dict[str, torch.Tensor]]:
    """`encode_graph` over many graphs with the cyclic GC paused (nothing here forms cycles, and a
    collector walking a corpus of live graphs would cost more than the encoding)."""
    with gc_paused():
        return [encode_graph(g, vocab, token_fn, max_stmt_tokens, pad_id, **kwargs) for g in graphs]
