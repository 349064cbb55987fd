"""Any str or bytes yields a valid graph: random bytes, truncated and mutated real functions, 1 MB."""
import random

import pytest

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.graph import EDGE_TYPES, StatementGraph

TOKENS = ["if", "(", ")", "{", "}", "else", "while", "for", ";", "x", "=", "strcpy", "do", "switch", "case", "1",
          ":", "goto", "l", "break", "continue", "return", "int", "*", "[", "]", "#if 0\n", "\n#endif\n", '"', "'",
          ",", "&", "->", "sizeof", "default", "argv", "getenv", "system", "/*", "*/", "\\", "#define X\n"]


def assert_valid(g: StatementGraph, max_nodes: int | None = None) -> None:
    assert isinstance(g, StatementGraph) and isinstance(g.parse_ok, bool)
    n = len(g.nodes)
    assert g.n_nodes_before_cap >= n and (max_nodes is None or n <= max_nodes)
    for s, d, t in g.edges:
        assert 0 <= s < n and 0 <= d < n and 0 <= t < len(EDGE_TYPES)
    for node in g.nodes:
        assert isinstance(node.text, str) and node.depth >= 0 and node.line >= 1


def test_random_bytes():
    rng = random.Random(1)
    for _ in range(300):
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600)))
        max_nodes = rng.choice([None, 1, 10])
        assert_valid(build_statement_graph(raw.decode("utf-8", errors="replace"), max_nodes), max_nodes)
        assert_valid(build_statement_graph(raw, max_nodes), max_nodes)


def test_lone_surrogates_and_control_characters():
    for code in ["\ud800 int x;", "\x00\x00", "void f(){ s = \"\udcff\"; }", "\t\r\n\x0b\x0c"]:
        assert_valid(build_statement_graph(code))


def test_token_soup():
    rng = random.Random(2)
    for _ in range(300):
        code = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 150)))
        assert_valid(build_statement_graph(code, 15), 15)


def test_truncated_and_mutated_real_functions(real_functions):
    rng = random.Random(3)
    for i in range(400):
        code = real_functions[i % len(real_functions)]
        a = rng.randint(0, len(code))
        cut = code[a:rng.randint(a, len(code))] if rng.random() < 0.5 else code[:a]
        assert_valid(build_statement_graph(cut, 30), 30)
        chars = list(code)
        for _ in range(rng.randint(1, 10)):
            chars[rng.randrange(len(chars))] = rng.choice("{}();,\n\"'/*#\\ ")
        assert_valid(build_statement_graph("".join(chars)))


@pytest.mark.slow
def test_one_megabyte_function(real_functions):
    bodies = [c[c.index("{") + 1:c.rindex("}")] for c in real_functions if "{" in c and "}" in c]
    body = "\n".join(bodies)
    code = "int big(char *in, int n)\n{\n" + body * (1_000_000 // len(body) + 1) + "\n}\n"
    assert len(code) >= 1_000_000
    g = build_statement_graph(code, 50)
    assert_valid(g, 50)
    assert len(g.nodes) == 50 and g.n_nodes_before_cap > 1000
    assert any(n.is_sink for n in g.nodes)  # the cap keeps nodes at sinks first
    assert_valid(build_statement_graph(code[: len(code) // 2]))  # and cut in the middle
