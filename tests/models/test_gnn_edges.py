"""The GNN reads edge types and edge direction (tiny hand-made graphs, no prepare)."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from streamguard.models.gnn import TaintFlowGNN
from streamguard.train.seeding import seed_everything

N_EDGE_TYPES = 6


def _graph(edge_index, edge_type) -> Batch:
    """Four statements with distinct kinds and features; only the edges vary between calls."""
    n = 4
    data = Data(x_kind=torch.tensor([0, 1, 2, 1]), x_feat=torch.tensor([[1, 0], [2, 3], [0, 0], [3, 1]]),
                x_flags=torch.tensor([[1., 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]),
                x_tok=torch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6], [2, 0, 0]]), depth=torch.tensor([0, 1, 1, 2]),
                edge_index=torch.tensor(edge_index, dtype=torch.long), edge_type=torch.tensor(edge_type, dtype=torch.long),
                num_nodes=n)
    return Batch.from_data_list([data])


def _model(conv: str) -> TaintFlowGNN:
    seed_everything(0)
    model = TaintFlowGNN(n_kinds=3, n_feats=4, n_tokens=7, n_edge_types=N_EDGE_TYPES, hidden=16, num_layers=2,
                         conv=conv, pooling="attention", dropout=0.0, pad_token=0)
    return model.eval()


@pytest.mark.parametrize("conv", ["rgcn", "gine"])
def test_edge_type_changes_the_output(conv):
    model = _model(conv)
    chain = [[0, 1, 2], [1, 2, 3]]
    as_cfg = model(_graph(chain, [1, 1, 1]))
    as_taint = model(_graph(chain, [5, 5, 5]))
    assert not torch.allclose(as_cfg, as_taint, atol=1e-6)


@pytest.mark.parametrize("conv", ["rgcn", "gine"])
def test_edge_direction_changes_the_output(conv):
    """Reverse edges are their own relation types, so a->b and b->a are different graphs."""
    model = _model(conv)
    forward = model(_graph([[0, 1, 2], [1, 2, 3]], [4, 4, 4]))
    backward = model(_graph([[1, 2, 3], [0, 1, 2]], [4, 4, 4]))
    assert not torch.allclose(forward, backward, atol=1e-6)


def test_edges_matter_at_all():
    model = _model("gine")
    with_edges = model(_graph([[0, 1, 2], [1, 2, 3]], [1, 1, 1]))
    without = model(_graph([[], []], []))
    assert with_edges.shape == without.shape == (1,)
    assert not torch.allclose(with_edges, without, atol=1e-6)
