import statistics

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from streamguard.errors import CheckpointError, DataError
from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.features import GraphVocab, encode_graph
from streamguard.graphs.graph import EDGE_TYPES
from streamguard.graphs.store import GraphStore, graph_statistics, pack_graphs
from streamguard.io import load_torch, save_torch_atomic

CODES = [
    "void f(char *in){ char buf[8]; strcpy(buf, in); }",
    "",  # no statements: one placeholder node
    "int g(int a){ int x = 0; while (x < a) { x++; } return x; }",
    "int h(int c){ if (c) return 1; else return 2; }",
]
LABELS = [1, 0, 0, 1]


def tokens(text):
    return [len(w) + 2 for w in text.split()]


@pytest.fixture
def encoded():
    graphs = [build_statement_graph(c) for c in CODES]
    vocab = GraphVocab.fit(graphs)
    return [encode_graph(g, vocab, tokens, max_stmt_tokens=4, pad_id=0) for g in graphs]


def test_pack_save_load_round_trip(tmp_path, encoded):
    packed = pack_graphs(encoded, LABELS)
    sizes = [e["x_kind"].shape[0] for e in encoded]
    assert packed["node_ptr"].tolist() == [0, sizes[0], sum(sizes[:2]), sum(sizes[:3]), sum(sizes)]
    assert packed["y"].tolist() == LABELS and all(isinstance(v, torch.Tensor) for v in packed.values())
    path = tmp_path / "graphs" / "train.pt"
    save_torch_atomic(path, packed)
    back = load_torch(path)  # weights_only=True
    assert back.keys() == packed.keys() and all(torch.equal(back[k], packed[k]) for k in packed)
    store = GraphStore.load(path)
    assert len(store) == 4
    for i, e in enumerate(encoded):
        d = store[i]
        assert isinstance(d, Data) and d.num_nodes == e["x_kind"].shape[0] and d.y.tolist() == [LABELS[i]]
        for k, v in e.items():
            assert torch.equal(getattr(d, k), v), k
    assert torch.equal(store[-1].x_tok, encoded[-1]["x_tok"])
    with pytest.raises(IndexError):
        store[4]


def test_pyg_dataloader_batches_with_offsets(encoded):
    store = GraphStore(pack_graphs(encoded, LABELS))
    batches = list(DataLoader(store, batch_size=3, shuffle=False))
    assert [b.num_graphs for b in batches] == [3, 1]
    b = batches[0]
    sizes = [e["x_kind"].shape[0] for e in encoded[:3]]
    assert b.batch.tolist() == [0] * sizes[0] + [1] * sizes[1] + [2] * sizes[2]
    assert b.y.tolist() == LABELS[:3] and b.x_tok.shape == (sum(sizes), 4) and b.x_feat.shape == (sum(sizes), 8)
    # Edges of the third graph are shifted by the nodes of the first two.
    third = encoded[2]["edge_index"] + sizes[0] + sizes[1]
    assert torch.equal(b.edge_index[:, -third.shape[1]:], third)
    assert torch.equal(b.edge_type, torch.cat([e["edge_type"] for e in encoded[:3]]))
    assert int(b.edge_index.max()) < b.num_nodes


def test_bad_packed_files_raise_data_errors(tmp_path, encoded):
    packed = pack_graphs(encoded, LABELS)
    with pytest.raises(DataError, match="x_tok"):
        GraphStore({k: v for k, v in packed.items() if k != "x_tok"})
    with pytest.raises(DataError, match="x_kind"):
        GraphStore(packed | {"x_kind": packed["x_kind"][:-1]})
    with pytest.raises(ValueError):
        pack_graphs(encoded, LABELS[:2])
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError):
        GraphStore.load(tmp_path / "bad.pt")


def test_graph_statistics(encoded):
    packed = pack_graphs(encoded, LABELS)
    stats = graph_statistics(packed)
    sizes = [e["x_kind"].shape[0] for e in encoded]
    assert stats["count"] == 4 and stats["nodes"]["max"] == max(sizes) and stats["nodes"]["total"] == sum(sizes)
    assert stats["nodes"]["median"] == statistics.median(sizes) and stats["nodes"]["mean"] == sum(sizes) / 4
    assert stats["edges"]["total"] == int(packed["edge_type"].numel())
    assert sum(v["total"] for v in stats["edges"]["by_type"].values()) == stats["edges"]["total"]
    assert set(stats["edges"]["by_type"]) == set(EDGE_TYPES)
    assert stats["edges"]["by_type"]["taint"]["total"] == 1 and stats["graphs_with_taint_edge"] == 1
    assert stats["graphs_with_sink"] == 1 and stats["empty_graphs"] == 1
    assert stats["labels"] == {"0": 2, "1": 2}
    assert stats["depth"]["max"] == 2
    empty = graph_statistics(pack_graphs([], []))
    assert empty["count"] == 0 and empty["nodes"]["mean"] is None
