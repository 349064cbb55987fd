"""Graph building is bounded by the node cap, not by the size of the function."""
import json
import pathlib
import subprocess
import sys

from streamguard.graphs.builder import MIN_STATEMENTS, build_statement_graph, statement_budget
from streamguard.graphs.dataflow import reaching_definitions

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_graph_memory.py"
# Without the budgets a 0.75 MB function of this shape took 9.5 GB and 230 s; with them any size
# takes about 100 MB over the interpreter (the parse of the first 1 MiB) and about a second.
MAX_ADDED_MB = 400
MAX_SECONDS = 30


def test_multi_megabyte_function_stays_under_the_memory_and_time_bound():
    proc = subprocess.run([sys.executable, str(BENCH), "--one", "6.5", "--max-nodes", "32"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["chars"] > 6 * 2**20
    assert r["added_mb"] < MAX_ADDED_MB, r
    assert r["seconds"] < MAX_SECONDS, r
    assert r["nodes"] == 32 and r["statements"] == statement_budget(32)


def test_the_statement_budget_keeps_the_first_statements():
    body = "".join(f"    x{i} = x{i - 1} + 1;\n" for i in range(1, MIN_STATEMENTS + 500))
    code = f"int f(int x0)\n{{\n{body}    return x1;\n}}\n"
    g = build_statement_graph(code)
    assert g.n_nodes_before_cap == len(g.nodes) == MIN_STATEMENTS
    assert g.nodes[0].kind == "function" and g.nodes[-1].text == f"x{MIN_STATEMENTS - 1} = x{MIN_STATEMENTS - 2} + 1;"
    assert statement_budget(4096) > statement_budget(32) == MIN_STATEMENTS


def _branches(n):
    """A switch with n cases that each define x, then a use of x: every definition reaches the use."""
    defs = [[]] + [["x"]] * n + [[]]
    uses = [[]] * (n + 1) + [["x"]]
    edges = [(0, k, 2) for k in range(1, n + 1)] + [(k, n + 1, 1) for k in range(1, n + 1)]
    return defs, uses, edges


def test_reaching_definitions_exact_below_the_pair_budget_and_latest_first_above():
    defs, uses, edges = _branches(10)
    exact = reaching_definitions(defs, uses, edges)
    assert sorted(exact) == [(d, 11, "x") for d in range(1, 11)]
    assert sorted(reaching_definitions(defs, uses, edges, max_deps=10)) == sorted(exact)
    capped = reaching_definitions(defs, uses, edges, max_deps=4)
    assert sorted(capped) == [(d, 11, "x") for d in (7, 8, 9, 10)]  # the latest four


def test_definitions_past_the_bit_budget_still_kill():
    # 0: x = ..; 1: x = .. (no bit: over budget); 2: use x. Node 1 still kills node 0's definition.
    deps = reaching_definitions([["x"], ["x"], []], [[], [], ["x"]], [(0, 1, 1), (1, 2, 1)], max_defs=1)
    assert deps == []
