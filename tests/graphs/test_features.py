import json
import os
import subprocess
import sys

import pytest
import torch

from streamguard.errors import DataError
from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.features import (FLAG_NAMES, FLOW_TAG_VALUES, PAD_ID, UNK_ID, GraphVocab, encode_graph,
                                         line_flow_tags, node_features)
from streamguard.graphs.graph import EDGE_TYPES, STMT_KINDS
from streamguard.io import read_json, write_json_atomic

from .conftest import SAMPLE_FUNCTIONS

TRAIN = [
    "void f(char *in){ char buf[8]; strcpy(buf, in); }",
    "int g(int a){ if (a > 0) return strlen(s); return 0; }",
    "void h(char *s){ strcpy(d, s); printf(\"%d\", 1); }",
]


def tokens(text):
    return [ord(c) % 50 + 2 for c in text]  # any deterministic tokenizer


def test_fit_counts_once_per_node_orders_and_thresholds():
    graphs = [build_statement_graph(c) for c in TRAIN]
    vocab = GraphVocab.fit(graphs, min_freq=2)
    assert vocab.kinds[:2] == ("<pad>", "<unk>") and vocab.kinds[2:] == STMT_KINDS
    assert vocab.features[:2] == ("<pad>", "<unk>")
    counts = {}
    for g in graphs:
        for n in g.nodes:
            for f in set(node_features(n)):
                counts[f] = counts.get(f, 0) + 1
    expected = sorted((f for f, c in counts.items() if c >= 2), key=lambda f: (-counts[f], f))
    assert list(vocab.features[2:]) == expected
    assert "api:strcpy" in vocab.features and "api:strlen" not in vocab.features  # seen once
    capped = GraphVocab.fit(graphs, min_freq=1, max_size=3)
    assert capped.features[2:] == tuple(sorted(counts, key=lambda f: (-counts[f], f))[:3])


def test_vocab_is_train_only_unknown_api_maps_to_unk():
    vocab = GraphVocab.fit([build_statement_graph(c) for c in TRAIN])
    test_graph = build_statement_graph("void t(char *p){ my_unseen_api(p); strcpy(x, p); }")
    enc = encode_graph(test_graph, vocab, tokens, max_stmt_tokens=6)
    unseen = [i for i, n in enumerate(test_graph.nodes) if n.apis == ["my_unseen_api"]][0]
    seen = [i for i, n in enumerate(test_graph.nodes) if n.apis == ["strcpy"]][0]
    assert enc["x_feat"][unseen, 0] == UNK_ID
    assert enc["x_feat"][seen, 0] == vocab.feature_id("api:strcpy") > UNK_ID
    assert vocab.kind_id("no-such-kind") == UNK_ID


_VOCAB_SCRIPT = """
import json, sys
from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.features import GraphVocab
from tests.graphs.conftest import SAMPLE_FUNCTIONS
v = GraphVocab.fit([build_statement_graph(c) for c in SAMPLE_FUNCTIONS], min_freq=1)
sys.stdout.write(json.dumps(v.to_dict(), sort_keys=True))
"""


def test_vocab_is_deterministic_across_processes():
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _VOCAB_SCRIPT], capture_output=True, text=True, env=env,
                             check=True, timeout=120)
        runs.append(out.stdout)
    here = GraphVocab.fit([build_statement_graph(c) for c in SAMPLE_FUNCTIONS], min_freq=1)
    assert runs[0] == runs[1] == json.dumps(here.to_dict(), sort_keys=True)


def test_vocab_json_round_trip_and_errors(tmp_path):
    vocab = GraphVocab.fit([build_statement_graph(c) for c in TRAIN], min_freq=1, max_size=50)
    write_json_atomic(tmp_path / "v.json", vocab.to_dict())
    back = GraphVocab.from_dict(read_json(tmp_path / "v.json"))
    assert back == vocab and back.feature_id("api:strcpy") == vocab.feature_id("api:strcpy")
    bad = vocab.to_dict() | {"features": ["x", "y"]}
    with pytest.raises(DataError, match="features"):
        GraphVocab.from_dict(bad, path="v.json")
    with pytest.raises(DataError, match="version"):
        GraphVocab.from_dict(vocab.to_dict() | {"version": 99})
    with pytest.raises(DataError, match="edge_types"):
        GraphVocab.from_dict(vocab.to_dict() | {"edge_types": ["ast"]})


def test_encode_graph_shapes_values_and_edges():
    g = build_statement_graph("void f(char *in){ char buf[8]; strcpy(buf, in); }")
    vocab = GraphVocab.fit([g])
    enc = encode_graph(g, vocab, tokens, max_stmt_tokens=5, pad_id=0, feat_slots=4)
    n, e = len(g.nodes), len(g.edges)
    assert enc["x_kind"].tolist() == [vocab.kind_id(k) for k in ("function", "declaration", "call")]
    assert enc["x_feat"].shape == (n, 4) and enc["x_feat"].dtype == torch.long
    assert enc["x_feat"][2].tolist() == [vocab.feature_id("api:strcpy"), 0, 0, 0]
    assert enc["x_flags"].dtype == torch.float32 and enc["x_flags"].shape == (n, len(FLAG_NAMES))
    assert enc["x_flags"].tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]
    assert enc["x_tok"].shape == (n, 5)
    assert enc["x_tok"][1].tolist() == tokens("char buf[8];")[:5]
    assert enc["depth"].tolist() == [0, 1, 1]
    assert enc["edge_index"].shape == (2, e) and enc["edge_type"].shape == (e,)
    taint_cols = (enc["edge_type"] == EDGE_TYPES.index("taint")).nonzero().flatten()
    assert enc["edge_index"][:, taint_cols].t().tolist() == [[0, 2]]


def test_encode_pads_short_statements_and_truncates_features():
    g = build_statement_graph("void f(int a){ a = b + c * d - e / f % g << h; }")
    vocab = GraphVocab.fit([g])
    enc = encode_graph(g, vocab, lambda t: [7], max_stmt_tokens=3, pad_id=9, feat_slots=2, max_depth=0)
    assert enc["x_tok"][:, 1:].eq(9).all() and enc["x_tok"][:, 0].eq(7).all()
    assert enc["x_feat"][1].ne(PAD_ID).all()  # more features than slots: all slots used
    assert enc["depth"].eq(0).all()  # clamped


def test_empty_graph_encodes_as_one_placeholder_node():
    vocab = GraphVocab.fit([build_statement_graph(c) for c in TRAIN])
    enc = encode_graph(build_statement_graph(""), vocab, tokens, max_stmt_tokens=4, pad_id=3)
    assert enc["x_kind"].tolist() == [0] and enc["x_feat"].shape == (1, 8) and enc["x_feat"].eq(0).all()
    assert enc["x_tok"].tolist() == [[3, 3, 3, 3]] and enc["x_flags"].eq(0).all()
    assert enc["edge_index"].shape == (2, 0) and enc["edge_type"].shape == (0,)


def test_line_flow_tags_mark_the_lines_of_flagged_statements():
    code = ("int f(void)\n{\n    char buf[64];\n    char *in = getenv(\"X\");\n    int n = 3;\n"
            "    strcpy(buf, in);\n    return n;\n}\n")
    tags = line_flow_tags(build_statement_graph(code))
    bit = {name: 1 << i for i, name in enumerate(FLAG_NAMES)}
    assert tags[4] == bit["source"] | bit["tainted"]  # getenv
    assert tags[6] == bit["sink"] | bit["tainted"]  # strcpy of the input
    assert tags.get(5, 0) == tags.get(7, 0) == 0  # untainted statements
    assert max(tags.values()) < FLOW_TAG_VALUES
