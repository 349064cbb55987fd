import gc
import pickle

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.parallel import build_graphs, gc_paused


def test_parallel_equals_sequential_in_input_order(real_functions):
    codes = real_functions[:120] + ["", "x = ;", "int f(){ return 1; }"]
    expected = [build_statement_graph(c, 20) for c in codes]
    seq = build_graphs(codes, 20, workers=1)
    par = build_graphs(codes, 20, workers=2, chunksize=7, min_parallel=0)
    assert seq == expected and par == expected
    assert [g.n_nodes_before_cap for g in par] == [g.n_nodes_before_cap for g in expected]


def test_forkserver_start_method(real_functions):
    codes = real_functions[:10]
    out = build_graphs(codes, None, workers=2, chunksize=3, min_parallel=0, start_method="forkserver")
    assert out == [build_statement_graph(c) for c in codes]


def test_small_batches_and_empty_input():
    assert build_graphs([], 10, workers=2, min_parallel=0) == []
    out = build_graphs(["void f(char *s){ system(s); }"], None, workers=4)
    assert len(out) == 1 and out[0].edges_of("taint") == [(0, 1)]


def test_graph_pickle_round_trip(real_functions):
    for code in real_functions[:20] + [""]:
        g = build_statement_graph(code)
        assert pickle.loads(pickle.dumps(g)) == g


def test_gc_paused_restores_state():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
